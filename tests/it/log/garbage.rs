//! Arbitrary bytes never make the log panic; hand-made frames with valid checksums are
//! judged by the torn-tail rule.

use geocrm::codec::encode_frame;
use geocrm::io::MemFs;
use geocrm::log::LogConfig;
use geocrm::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

#[test]
fn random_bytes_as_a_segment_are_rejected_or_cut() {
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    for round in 0..500 {
        let len = rng.gen_range(0..400);
        let junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let fs = MemFs::new();
        fs.write_raw(&seg_path(1), &junk);
        assert_corrupt_at(open(&fs), &seg_path(1), 0, &format!("round {round}"));

        let mut bytes = header(1, 1, ID, 1);
        bytes.extend_from_slice(&junk);
        let fs = MemFs::new();
        fs.write_raw(&seg_path(1), &bytes);
        let o = open(&fs).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(o.txns.is_empty());
        assert_eq!(
            o.report.truncated.map(|t| (t.offset, t.bytes_dropped)),
            (len > 0).then_some((48, len as u64))
        );
    }
}

#[test]
fn random_damage_anywhere_never_panics_and_never_invents_transactions() {
    let config = LogConfig::default().with_segment_bytes(500);
    let (fs, txns, receipts) = synced_log(23, 20, config);
    let segments = receipts.last().unwrap().positions[0].segment;
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    let (mut opened, mut refused) = (0, 0);
    for round in 0..2000 {
        let path = seg_path(rng.gen_range(1..=segments));
        let mut bytes = fs.read_all(&path).unwrap();
        for _ in 0..rng.gen_range(1..=4) {
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = rng.gen();
        }
        if rng.gen_bool(0.2) {
            bytes.truncate(rng.gen_range(0..=bytes.len()));
        }
        match open_with(&planted(&fs, &path, &bytes), config) {
            Ok(o) => {
                opened += 1;
                assert_replayed(&o.txns, &txns[..o.txns.len()]);
            }
            Err(Error::Corrupt { .. } | Error::UnsupportedVersion { .. }) => refused += 1,
            Err(e) => panic!("round {round}: unexpected {e}"),
        }
    }
    assert!(opened > 0 && refused > 0, "opened {opened}, refused {refused}");
}

#[test]
fn a_frame_claiming_4_gib_is_cut_at_the_tail_and_corruption_in_a_sealed_segment() {
    let config = LogConfig::default().with_segment_bytes(400);
    let (fs, txns, receipts) = synced_log(25, 12, config);
    let newest = receipts.last().unwrap().positions[0].segment;
    for claimed in [u32::MAX, 64 << 20, (64 << 20) + 1, 1000] {
        let mut junk = claimed.to_le_bytes().to_vec();
        junk.extend_from_slice(&[0xAB; 100]);

        let mut tail = fs.read_all(&seg_path(newest)).unwrap();
        let end = tail.len() as u64;
        tail.extend_from_slice(&junk);
        let o = open_with(&planted(&fs, &seg_path(newest), &tail), config).unwrap();
        assert_replayed(&o.txns, &txns);
        let cut = o.report.truncated.unwrap();
        assert_eq!((cut.offset, cut.bytes_dropped), (end, 104), "claimed {claimed}");

        let mut sealed = fs.read_all(&seg_path(1)).unwrap();
        let end = sealed.len() as u64;
        sealed.extend_from_slice(&junk);
        assert_corrupt_at(
            open_with(&planted(&fs, &seg_path(1), &sealed), config),
            &seg_path(1),
            end,
            "sealed",
        );
    }
}

/// A frame built by hand, with a valid checksum.
fn frame(first_lsn: u64, op_count: u32, durable: u64, more: bool, body: &[u8]) -> Vec<u8> {
    let mut payload = first_lsn.to_le_bytes().to_vec();
    payload.extend_from_slice(&op_count.to_le_bytes());
    payload.extend_from_slice(&durable.to_le_bytes());
    payload.push(u8::from(more));
    payload.extend_from_slice(body);
    let mut out = Vec::new();
    encode_frame(&payload, &mut out);
    out
}

#[test]
fn frames_are_laid_out_as_documented() {
    let (fs, txns, receipts) = synced_log(26, 3, LogConfig::default());
    let bytes = fs.read_all(&seg_path(1)).unwrap();
    let mut expected = header(1, 1, ID, 2);
    let mut durable = 48;
    for (txn, receipt) in txns.iter().zip(&receipts) {
        let mut lsn = receipt.first_lsn;
        for (i, (body, ops)) in txn.iter().enumerate() {
            expected.extend_from_slice(&frame(lsn, *ops, durable, i + 1 < txn.len(), body));
            lsn += u64::from(*ops);
        }
        durable = expected.len() as u64;
    }
    assert_eq!(bytes, expected);
}

#[test]
fn a_checksummed_frame_with_the_wrong_lsn_is_cut_unless_acknowledged() {
    let (fs, txns, receipts) = synced_log(27, 6, LogConfig::default());
    let path = seg_path(1);
    let full = fs.read_all(&path).unwrap();
    let durable_of =
        |pos: FramePos| u64::from_le_bytes(full[pos.offset as usize + 20..][..8].try_into().unwrap());
    let rewrite = |k: usize, lsn_shift: u64, durable: Option<u64>| {
        let pos = receipts[k].positions[0];
        let (body, ops) = &txns[k][0];
        let replacement = frame(
            receipts[k].first_lsn + lsn_shift,
            *ops,
            durable.unwrap_or_else(|| durable_of(pos)),
            txns[k].len() > 1,
            body,
        );
        assert_eq!(replacement.len(), pos.len as usize);
        let mut bytes = full.clone();
        bytes[pos.offset as usize..][..replacement.len()].copy_from_slice(&replacement);
        (pos.offset, planted(&fs, &path, &bytes))
    };
    // Unchanged, the rewrite reproduces the file.
    assert_replayed(&open(&rewrite(2, 0, None).1).unwrap().txns, &txns);
    // Acknowledged (later frames record it as durable): corruption at the frame.
    let (at, img) = rewrite(2, 1, None);
    assert_corrupt_at(open(&img), &path, at, "wrong LSN, acknowledged");
    // The newest transaction: nothing records it as durable, so it is a torn tail.
    let (at, img) = rewrite(5, 1, None);
    let o = open(&img).unwrap();
    assert_replayed(&o.txns, &txns[..5]);
    assert_eq!(o.report.truncated.unwrap().offset, at);
    // A durable offset beyond the frame's own offset is impossible.
    let (at, img) = rewrite(5, 0, Some(receipts[5].positions[0].offset + 1));
    assert_eq!(open(&img).unwrap().report.truncated.unwrap().offset, at);
    let (at, img) = rewrite(2, 0, Some(receipts[2].positions[0].offset + 1));
    assert_corrupt_at(open(&img), &path, at, "impossible durable offset, acknowledged");
}

#[test]
fn a_transaction_without_operations_is_invalid() {
    let (fs, txns, _) = synced_log(28, 3, LogConfig::default());
    let mut bytes = fs.read_all(&seg_path(1)).unwrap();
    let end = bytes.len() as u64;
    let next = 1 + txns.iter().map(ops_of).sum::<u64>();
    bytes.extend_from_slice(&frame(next, 0, end, false, b"empty"));
    let o = open(&planted(&fs, &seg_path(1), &bytes)).unwrap();
    assert_replayed(&o.txns, &txns);
    assert_eq!(o.report.truncated.unwrap().offset, end);
}
