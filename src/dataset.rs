//! Seeded synthetic CRM data: customers clustered around real city centres (weighted by
//! population, a few km of spread) or spread uniformly over inhabited latitudes. The same
//! seed always gives the same records, so benchmarks and tests are reproducible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::geo::LatLon;
use crate::model::{Record, Schema};

/// A city used as a cluster centre: name, latitude, longitude, population in millions.
pub const CITIES: &[(&str, f64, f64, f64)] = &[
    ("Tokyo", 35.6762, 139.6503, 37.4),
    ("Delhi", 28.7041, 77.1025, 31.0),
    ("Shanghai", 31.2304, 121.4737, 27.1),
    ("São Paulo", -23.5505, -46.6333, 22.0),
    ("Mexico City", 19.4326, -99.1332, 21.8),
    ("Cairo", 30.0444, 31.2357, 20.9),
    ("Mumbai", 19.0760, 72.8777, 20.4),
    ("Beijing", 39.9042, 116.4074, 20.4),
    ("Dhaka", 23.8103, 90.4125, 21.0),
    ("Osaka", 34.6937, 135.5023, 19.2),
    ("New York", 40.7128, -74.0060, 18.8),
    ("Karachi", 24.8607, 67.0011, 16.1),
    ("Buenos Aires", -34.6037, -58.3816, 15.2),
    ("Istanbul", 41.0082, 28.9784, 15.2),
    ("Kolkata", 22.5726, 88.3639, 14.9),
    ("Lagos", 6.5244, 3.3792, 14.4),
    ("Manila", 14.5995, 120.9842, 13.9),
    ("Rio de Janeiro", -22.9068, -43.1729, 13.5),
    ("Guangzhou", 23.1291, 113.2644, 13.3),
    ("Los Angeles", 34.0522, -118.2437, 12.5),
    ("Moscow", 55.7558, 37.6173, 12.5),
    ("Paris", 48.8566, 2.3522, 11.0),
    ("Jakarta", -6.2088, 106.8456, 10.8),
    ("London", 51.5074, -0.1278, 9.3),
    ("Lima", -12.0464, -77.0428, 10.7),
    ("Bangkok", 13.7563, 100.5018, 10.5),
    ("Seoul", 37.5665, 126.9780, 9.9),
    ("Chicago", 41.8781, -87.6298, 8.9),
    ("Tehran", 35.6892, 51.3890, 9.1),
    ("Johannesburg", -26.2041, 28.0473, 5.9),
    ("Sydney", -33.8688, 151.2093, 5.3),
    ("Toronto", 43.6532, -79.3832, 6.2),
    ("Madrid", 40.4168, -3.7038, 6.6),
    ("Berlin", 52.5200, 13.4050, 3.6),
    ("Nairobi", -1.2921, 36.8219, 4.7),
    ("Singapore", 1.3521, 103.8198, 5.9),
    ("Lyon", 45.7640, 4.8357, 1.7),
    ("Marseille", 43.2965, 5.3698, 1.6),
    ("Auckland", -36.8485, 174.7633, 1.7),
    ("Fiji Suva", -18.1416, 178.4419, 0.2),
    ("Anchorage", 61.2181, -149.9003, 0.3),
    ("Reykjavik", 64.1466, -21.9426, 0.2),
    ("Tromsø", 69.6492, 18.9553, 0.08),
    ("Ushuaia", -54.8019, -68.3030, 0.08),
    ("Honolulu", 21.3069, -157.8583, 1.0),
    ("Shenzhen", 22.5431, 114.0579, 12.6),
    ("Chengdu", 30.5728, 104.0668, 9.5),
    ("Wuhan", 30.5928, 114.3055, 8.4),
    ("Toulouse", 43.6047, 1.4442, 1.0),
    ("Saint-Denis (Réunion)", -20.8823, 55.4504, 0.15),
    ("Cayenne", 4.9224, -52.3135, 0.06),
];

const TIERS: &[&str] = &["bronze", "silver", "gold", "platinum"];
const SEGMENTS: &[&str] = &["retail", "smb", "enterprise", "public"];
const FIRST: &[&str] =
    &["Ada", "Grace", "Alan", "Linus", "Margaret", "Edsger", "Barbara", "Ken", "Frances", "Donald"];
const LAST: &[&str] =
    &["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Dijkstra", "Liskov", "Thompson"];

/// One synthetic customer.
#[derive(Debug, Clone)]
pub struct Customer {
    /// Id like `C-0000042`.
    pub id: String,
    /// Location.
    pub location: LatLon,
    /// `bronze`, `silver`, `gold` or `platinum`.
    pub tier: &'static str,
    /// `retail`, `smb`, `enterprise` or `public`.
    pub segment: &'static str,
    /// Lifetime value in currency units (log-normal-ish, tier-dependent).
    pub lifetime_value: f64,
    /// Visits in the last year.
    pub visits: f64,
    /// Full name (PII).
    pub name: String,
    /// E.164 phone number (PII).
    pub phone: String,
    /// E-mail address (PII).
    pub email: String,
    /// Street address (PII).
    pub address: String,
}

impl Customer {
    /// The schema these customers fit: CRM PII fields plus `lifetime_value`, `visits`,
    /// `tier`, `segment`.
    #[must_use]
    pub fn schema() -> Schema {
        Schema::crm().number("lifetime_value").number("visits").category("tier").category("segment")
    }

    /// As a record for [`crate::WriteBatch::upsert`]; `with_pii` adds the four PII fields.
    #[must_use]
    pub fn to_record(&self, with_pii: bool) -> Record {
        let r = Record::new(self.id.clone(), self.location)
            .number("lifetime_value", self.lifetime_value)
            .number("visits", self.visits)
            .category("tier", self.tier)
            .category("segment", self.segment);
        if with_pii {
            r.pii("name", self.name.clone())
                .pii("phone", self.phone.clone())
                .pii("email", self.email.clone())
                .pii("address", self.address.clone())
        } else {
            r
        }
    }
}

/// Which spatial distribution to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Around [`CITIES`], weighted by population, a few km of spread.
    Clustered,
    /// Uniform on the sphere between latitudes -60 and 72.
    Uniform,
}

/// `n` customers drawn with `seed`.
///
/// ```
/// use geocrm::dataset::{customers, Distribution};
/// let a = customers(1000, 7, Distribution::Clustered);
/// let b = customers(1000, 7, Distribution::Clustered);
/// assert_eq!(a[999].location, b[999].location);
/// ```
#[must_use]
pub fn customers(n: usize, seed: u64, distribution: Distribution) -> Vec<Customer> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let total: f64 = CITIES.iter().map(|c| c.3).sum();
    (0..n)
        .map(|i| {
            let location = match distribution {
                Distribution::Clustered => clustered_point(&mut rng, total),
                Distribution::Uniform => uniform_point(&mut rng),
            };
            person(&mut rng, i, location)
        })
        .collect()
}

fn clustered_point(rng: &mut ChaCha8Rng, total: f64) -> LatLon {
    let mut pick = rng.gen::<f64>() * total;
    let mut city = CITIES[0];
    for c in CITIES {
        city = *c;
        pick -= c.3;
        if pick <= 0.0 {
            break;
        }
    }
    // Gaussian spread: sigma grows with city size (3 km for small towns, ~15 km for megacities).
    let sigma_km = 3.0 + 2.0 * city.3.sqrt();
    let (g1, g2) = gaussian_pair(rng);
    let lat = (city.1 + g1 * sigma_km / 111.2).clamp(-90.0, 90.0);
    let scale = 111.2 * city.1.to_radians().cos().max(0.05);
    let mut lon = city.2 + g2 * sigma_km / scale;
    if lon > 180.0 {
        lon -= 360.0;
    } else if lon < -180.0 {
        lon += 360.0;
    }
    LatLon::new(lat, lon).unwrap_or_else(|_| LatLon::new(city.1, city.2).unwrap_or(LatLon::ORIGIN))
}

fn uniform_point(rng: &mut ChaCha8Rng) -> LatLon {
    let (lo, hi) = ((-60f64).to_radians().sin(), 72f64.to_radians().sin());
    let lat = rng.gen_range(lo..=hi).asin().to_degrees();
    let lon = rng.gen_range(-180.0..180.0);
    LatLon::new(lat, lon).unwrap_or(LatLon::ORIGIN)
}

fn gaussian_pair(rng: &mut ChaCha8Rng) -> (f64, f64) {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    let r = (-2.0 * u1.ln()).sqrt();
    let t = std::f64::consts::TAU * u2;
    (r * t.cos(), r * t.sin())
}

fn person(rng: &mut ChaCha8Rng, i: usize, location: LatLon) -> Customer {
    let tier_roll: f64 = rng.gen();
    let tier_i = if tier_roll < 0.55 {
        0
    } else if tier_roll < 0.85 {
        1
    } else if tier_roll < 0.97 {
        2
    } else {
        3
    };
    let base = [80.0, 400.0, 2_000.0, 12_000.0][tier_i];
    let (g, _) = gaussian_pair(rng);
    let lifetime_value = (base * (0.6 * g).exp() * 100.0).round() / 100.0;
    let first = FIRST[rng.gen_range(0..FIRST.len())];
    let last = LAST[rng.gen_range(0..LAST.len())];
    Customer {
        id: format!("C-{i:07}"),
        location,
        tier: TIERS[tier_i],
        segment: SEGMENTS[rng.gen_range(0..SEGMENTS.len())],
        lifetime_value,
        visits: f64::from(rng.gen_range(0..60u32)),
        name: format!("{first} {last}"),
        phone: format!("+{}{:09}", rng.gen_range(1..99u32), rng.gen_range(0..1_000_000_000u32)),
        email: format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), i),
        address: format!("{} {} Street", rng.gen_range(1..400u32), LAST[rng.gen_range(0..LAST.len())]),
    }
}
