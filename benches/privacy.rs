//! PII envelope benchmarks: seal and open throughput per field for small (~20-byte, a phone
//! number or e-mail address) and larger (~200-byte, a postal address with notes) values,
//! plus data-key generation, the blind-index HMAC and phone normalization — the per-record
//! costs of a bulk import with PII.
//!
//! Run: `cargo bench --bench privacy`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use geocrm::crypto::{normalize_phone, open, seal, BlindIndexKey, DataKey, FieldContext, MasterKey};

fn envelope(c: &mut Criterion) {
    let dk = DataKey::generate();
    let ctx = FieldContext {
        db_id: [7; 16],
        collection: "customers",
        record_id: "C-0001234",
        field: "email",
        key_id: 42,
    };
    let small = "ada.lovelace@ex.org"; // 19 bytes
    let large = "Flat 3, 12 Rue de Rivoli, 75004 Paris, France. Deliveries: ring twice, the \
                 concierge keeps parcels on weekdays; do not call before 9 am; gate code on \
                 file; prefers e-mail; account manager: G. Hopper, since 2019."; // ~200 bytes
    let mut group = c.benchmark_group("envelope");
    for (name, value) in [("small", small), ("large", large)] {
        group.throughput(Throughput::Bytes(value.len() as u64));
        group.bench_function(BenchmarkId::new("seal", format!("{name}-{}B", value.len())), |b| {
            b.iter(|| black_box(seal(&dk, &ctx, black_box(value))));
        });
        let sealed = seal(&dk, &ctx, value);
        group.bench_function(BenchmarkId::new("open", format!("{name}-{}B", value.len())), |b| {
            b.iter(|| black_box(open(&dk, &ctx, black_box(&sealed)).expect("open")));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("per-record");
    group.bench_function("data-key-generate", |b| b.iter(|| black_box(DataKey::generate())));
    let blind = BlindIndexKey::derive(&MasterKey::from_bytes([1; 32]), &[2; 16]);
    group.bench_function("blind-value", |b| {
        b.iter(|| black_box(blind.blind_value("phone", black_box("+33142685300"))));
    });
    group.bench_function("normalize-phone", |b| {
        b.iter(|| black_box(normalize_phone(black_box("+33 1 42 68 53 00")).expect("valid")));
    });
    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
