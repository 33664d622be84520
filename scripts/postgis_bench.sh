#!/usr/bin/env bash
# PostGIS beside geocrm on the same data and the same queries.
#
#   scripts/postgis_bench.sh [RECORDS] [OUTPUT.md]
#
# 1. `geocrm bench --json --export-csv DIR` measures geocrm (and the default peers) and writes
#    the seeded datasets, the query points and the polygon fixtures;
# 2. PostgreSQL and PostGIS are installed from the distribution's packages (apt) if missing;
# 3. a private cluster is created in a temporary directory and started on 127.0.0.1 only
#    (port 54329, trust authentication for local connections, removed at exit);
# 4. the CSV files are loaded, GiST indexes built (timed), PostGIS's answers to the first 20
#    query points of each operation (and to each polygon) are checked against geocrm's
#    (`expected_<dataset>.csv`; a disagreement prints a warning and the cell reads WRONG), and
#    every query runs in ONE
#    connection inside PL/pgSQL loops (plans are prepared once), each query timed on its own
#    with clock_timestamp(): median and p90 over the first REPS query points (geocrm times
#    the points after its 2,020 checked and warm-up ones: other points of the same draw);
# 5. a Markdown table with a PostGIS column (median and ratio to geocrm) is printed and, with
#    OUTPUT.md, appended to that file.
#
# Optional: never part of `cargo test` or CI. Needs root (apt, and to run postgres as the
# `postgres` user), python3, and a few minutes at 1M records.
#
# Semantics, as in geocrm: nearest by great-circle distance (geography `<->`, sphere), radius
# with ST_DWithin(geography, geography, metres, false) (sphere), bounding boxes and polygons in
# planar lon/lat (GeoJSON semantics) with the boundary included (ST_Covers). PostGIS's sphere
# radius (6371008.77 m) is geocrm's mean radius to a few decimetres; counts on the
# 2 km boundary could differ by a point in rare cases. H3 aggregation needs the h3-pg extension
# and is left out (n/a).
set -euo pipefail

RECORDS="${1:-1000000}"
OUTPUT="${2:-}"
PORT=54329
REPS="${POSTGIS_BENCH_REPS:-200}" # query points per operation (geocrm exports 65,536 by default)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/geocrm-postgis-XXXXXX)"
chmod 755 "$WORK"

PGBIN=""
cleanup() {
  if [[ -n "$PGBIN" && -d "$WORK/pg" ]]; then
    su postgres -s /bin/sh -c "'$PGBIN/pg_ctl' -D '$WORK/pg' -m immediate stop" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== geocrm bench ($RECORDS records), exporting the data to $WORK/data" >&2
(cd "$ROOT" && cargo run --release --quiet -- bench --records "$RECORDS" --json --export-csv "$WORK/data") \
  >"$WORK/geocrm.json"
chmod -R a+rX "$WORK/data"

if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
  echo "== installing PostgreSQL and PostGIS (apt)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-postgis >/dev/null
fi
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
echo "== starting a private cluster ($PGBIN) on 127.0.0.1:$PORT" >&2
install -d -o postgres -g postgres "$WORK/pg" "$WORK/sock"
su postgres -s /bin/sh -c "'$PGBIN/initdb' -D '$WORK/pg' -A trust -U postgres --no-sync" >/dev/null
su postgres -s /bin/sh -c "'$PGBIN/pg_ctl' -D '$WORK/pg' -l '$WORK/pg/server.log' -w start \
  -o \"-c listen_addresses=127.0.0.1 -p $PORT -k '$WORK/sock' -c shared_buffers=1GB -c jit=off\"" >/dev/null
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres)

cat >"$WORK/bench.sql" <<'SQL'
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE results(dataset text, operation text, median_us float8, p90_us float8);
CREATE TABLE polygons(name text PRIMARY KEY, geom geometry);
CREATE TABLE got(dataset text, operation text, q int, value text);

-- Times `sql` (a query taking $1 lat, $2 lon, $3..$6 south/west/north/east) once per query
-- point, in this one connection; EXECUTE … USING keeps one plan per statement text.
CREATE FUNCTION time_each(ds text, op text, sql text, reps int) RETURNS void AS $$
DECLARE q record; t0 timestamptz; ts float8[] := '{}'; n bigint;
BEGIN
  FOR q IN EXECUTE format('SELECT * FROM %I ORDER BY q LIMIT %s', 'queries_' || ds, reps) LOOP
    t0 := clock_timestamp();
    EXECUTE sql INTO n USING q.lat, q.lon, q.south, q.west, q.north, q.east;
    ts := ts || (extract(epoch FROM clock_timestamp() - t0) * 1e6)::float8;
  END LOOP;
  INSERT INTO results SELECT ds, op,
    percentile_disc(0.5) WITHIN GROUP (ORDER BY t), percentile_disc(0.9) WITHIN GROUP (ORDER BY t)
    FROM unnest(ts) t;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION time_once(ds text, op text, sql text, reps int) RETURNS void AS $$
DECLARE t0 timestamptz; ts float8[] := '{}'; n bigint;
BEGIN
  FOR i IN 1..reps LOOP
    t0 := clock_timestamp();
    EXECUTE sql INTO n;
    ts := ts || (extract(epoch FROM clock_timestamp() - t0) * 1e6)::float8;
  END LOOP;
  INSERT INTO results SELECT ds, op,
    percentile_disc(0.5) WITHIN GROUP (ORDER BY t), percentile_disc(0.9) WITHIN GROUP (ORDER BY t)
    FROM unnest(ts) t;
END $$ LANGUAGE plpgsql;
SQL

for ds in uniform clustered; do
  cat >>"$WORK/bench.sql" <<SQL
CREATE TABLE c_$ds(id int, lat float8, lon float8, tier text, lifetime_value float8);
\\copy c_$ds FROM '$WORK/data/customers_$ds.csv' WITH (FORMAT csv, HEADER true)
CREATE TABLE queries_$ds(q int, lat float8, lon float8, south float8, west float8, north float8, east float8);
\\copy queries_$ds FROM '$WORK/data/queries_$ds.csv' WITH (FORMAT csv, HEADER true)
CREATE TABLE expected_$ds(operation text, q int, value text);
\\copy expected_$ds FROM '$WORK/data/expected_$ds.csv' WITH (FORMAT csv, HEADER true)
ALTER TABLE c_$ds ADD COLUMN geog geography(Point, 4326), ADD COLUMN geom geometry(Point, 4326);
UPDATE c_$ds SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326), geog = ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography;
DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
  CREATE INDEX ON c_$ds USING gist(geog);
  CREATE INDEX ON c_$ds USING gist(geom);
  INSERT INTO results VALUES ('$ds', 'index build ($RECORDS records)',
    extract(epoch FROM clock_timestamp() - t0) * 1e6, extract(epoch FROM clock_timestamp() - t0) * 1e6);
END \$\$;
VACUUM ANALYZE c_$ds;
-- PostGIS's answers to the queries geocrm answered (checked by the report below).
INSERT INTO got SELECT '$ds', e.operation, e.q, CASE
    WHEN e.operation LIKE 'nearest-%' THEN (SELECT round(max(ST_Distance(s.geog, p.g, false))::numeric, 3)::text
      FROM (SELECT geog FROM c_$ds WHERE e.operation NOT LIKE '%gold%' OR tier = 'gold'
            ORDER BY geog <-> p.g LIMIT substring(e.operation FROM 'nearest-([0-9]+)')::int) s)
    WHEN e.operation = 'radius 2 km count' THEN (SELECT count(*) FROM c_$ds WHERE ST_DWithin(geog, p.g, 2000, false))::text
    WHEN e.operation = 'bbox 50 km count' THEN (SELECT count(*) FROM c_$ds WHERE
      ST_Covers(ST_MakeEnvelope(qq.west, qq.south, CASE WHEN qq.west <= qq.east THEN qq.east ELSE 180 END, qq.north, 4326), geom)
      OR (qq.west > qq.east AND ST_Covers(ST_MakeEnvelope(-180, qq.south, qq.east, qq.north, 4326), geom)))::text
    END
  FROM expected_$ds e JOIN queries_$ds qq ON qq.q = e.q,
       LATERAL (SELECT ST_SetSRID(ST_MakePoint(qq.lon, qq.lat), 4326)::geography AS g) p
  WHERE e.operation NOT LIKE 'polygon count%';
SELECT time_each('$ds', 'nearest-1', 'SELECT count(*) FROM (SELECT id FROM c_$ds ORDER BY geog <-> ST_SetSRID(ST_MakePoint(\$2, \$1), 4326)::geography LIMIT 1) s', $REPS);
SELECT time_each('$ds', 'nearest-10', 'SELECT count(*) FROM (SELECT id FROM c_$ds ORDER BY geog <-> ST_SetSRID(ST_MakePoint(\$2, \$1), 4326)::geography LIMIT 10) s', $REPS);
SELECT time_each('$ds', 'nearest-100', 'SELECT count(*) FROM (SELECT id FROM c_$ds ORDER BY geog <-> ST_SetSRID(ST_MakePoint(\$2, \$1), 4326)::geography LIMIT 100) s', $REPS);
SELECT time_each('$ds', 'nearest-10, tier = gold', 'SELECT count(*) FROM (SELECT id FROM c_$ds WHERE tier = ''gold'' ORDER BY geog <-> ST_SetSRID(ST_MakePoint(\$2, \$1), 4326)::geography LIMIT 10) s', $REPS);
SELECT time_each('$ds', 'radius 2 km count', 'SELECT count(*) FROM c_$ds WHERE ST_DWithin(geog, ST_SetSRID(ST_MakePoint(\$2, \$1), 4326)::geography, 2000, false)', $REPS);
SELECT time_each('$ds', 'bbox 50 km count', 'SELECT count(*) FROM c_$ds WHERE
    ST_Covers(ST_MakeEnvelope(\$4, \$3, CASE WHEN \$4 <= \$6 THEN \$6 ELSE 180 END, \$5, 4326), geom)
    OR (\$4 > \$6 AND ST_Covers(ST_MakeEnvelope(-180, \$3, \$6, \$5, 4326), geom))', $REPS);
SQL
done

# Polygons: the fixtures as geometries (GeoJSON Feature → its geometry).
for f in paris_approx china_ne10m france_world; do
  python3 - "$WORK/data/$f.geojson" "$f" >>"$WORK/bench.sql" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
g = g.get("geometry", g)
print(f"INSERT INTO polygons VALUES ('{sys.argv[2]}', ST_SetSRID(ST_GeomFromGeoJSON('{json.dumps(g)}'), 4326));")
PY
done
for ds in uniform clustered; do
  cat >>"$WORK/bench.sql" <<SQL
INSERT INTO got SELECT '$ds', e.operation, e.q, (SELECT count(*) FROM c_$ds c, polygons p WHERE p.name = CASE
    WHEN e.operation LIKE '%Paris%' THEN 'paris_approx' WHEN e.operation LIKE '%China%' THEN 'china_ne10m'
    ELSE 'france_world' END AND ST_Covers(p.geom, c.geom))::text
  FROM expected_$ds e WHERE e.operation LIKE 'polygon count%';
SELECT time_once('$ds', 'polygon count: Paris (city, 29 vertices)', 'SELECT count(*) FROM c_$ds c, polygons p WHERE p.name = ''paris_approx'' AND ST_Covers(p.geom, c.geom)', 20);
SELECT time_once('$ds', 'polygon count: China (14,110 vertices)', 'SELECT count(*) FROM c_$ds c, polygons p WHERE p.name = ''china_ne10m'' AND ST_Covers(p.geom, c.geom)', 5);
SELECT time_once('$ds', 'polygon count: France + overseas, across the globe (62 parts, 5,141 vertices)', 'SELECT count(*) FROM c_$ds c, polygons p WHERE p.name = ''france_world'' AND ST_Covers(p.geom, c.geom)', 5);
SQL
done
echo "\\copy results TO '$WORK/postgis.csv' WITH (FORMAT csv, HEADER true)" >>"$WORK/bench.sql"
echo "\\copy got TO '$WORK/got.csv' WITH (FORMAT csv, HEADER true)" >>"$WORK/bench.sql"

echo "== loading and querying PostGIS (one connection)" >&2
"${PSQL[@]}" -f "$WORK/bench.sql" >/dev/null

python3 - "$WORK/geocrm.json" "$WORK/postgis.csv" "$("${PSQL[@]}" -Atc 'SELECT postgis_full_version()' | cut -c1-60)" "$WORK/data" "$WORK/got.csv" >"$WORK/table.md" <<'PY'
import csv, json, sys
g = json.load(open(sys.argv[1]))
# PostGIS's answers against geocrm's: counts equal, k-th neighbour distances within 1 cm.
wrong = {}
got = {(r["dataset"], r["operation"], r["q"]): r["value"] for r in csv.DictReader(open(sys.argv[5]))}
for ds in ("uniform", "clustered"):
    for e in csv.DictReader(open(f"{sys.argv[4]}/expected_{ds}.csv")):
        mine, theirs = e["value"], got.get((ds, e["operation"], e["q"]))
        same = theirs is not None and (mine == theirs if "." not in mine
                                       else abs(float(mine) - float(theirs or "nan")) <= 0.01 + 1e-7 * float(mine))
        if not same:
            wrong.setdefault((ds, e["operation"]), f"query {e['q']}: PostGIS {theirs}, geocrm {mine}")
checked = sum(1 for ds in ("uniform", "clustered") for _ in csv.DictReader(open(f"{sys.argv[4]}/expected_{ds}.csv")))
print(f"checked {checked} PostGIS answers against geocrm's: {len(wrong)} operations disagree", file=sys.stderr)
for (ds, op), why in wrong.items():
    print(f"WARNING: {ds} / {op}: PostGIS disagrees with geocrm: {why}", file=sys.stderr)
pg = {(r["dataset"], r["operation"]): float(r["median_us"]) for r in csv.DictReader(open(sys.argv[2]))}
geo = {(r["dataset"], r["operation"]): r["median_us"] for r in g["rows"] if r["engine"] == "geocrm"}
def fmt(us):
    return f"{us:.2f} µs" if us < 10 else f"{us:.1f} µs" if us < 1e3 else f"{us/1e3:.2f} ms" if us < 1e6 else f"{us/1e6:.2f} s"
print(f"\n### PostGIS ({sys.argv[3]}), {g['records']} records, commit {g['commit']}\n")
print("| dataset | operation | geocrm | PostGIS |\n|---|---|---:|---:|")
for (ds, op), us in pg.items():
    mine = next((v for (d, o), v in geo.items() if d == ds and o.split(" (")[0] == op.split(" (")[0]), None)
    ratio = f" ({us / mine:.1f}×)" if mine else ""
    cell = f"WRONG ({fmt(us)})" if (ds, op) in wrong else f"{fmt(us)}{ratio}"
    print(f"| {ds} | {op} | {fmt(mine) if mine else 'n/a'} | {cell} |")
print("| both | H3 aggregation | see table | n/a (needs h3-pg) |")
PY
cat "$WORK/table.md"
if [[ -n "$OUTPUT" ]]; then
  cat "$WORK/table.md" >>"$OUTPUT"
  echo "appended to $OUTPUT" >&2
fi
