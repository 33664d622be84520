use std::path::Path;

use super::*;

fn p(s: &str) -> &Path {
    Path::new(s)
}

fn fs_with_dir() -> MemFs {
    let fs = MemFs::new();
    fs.create_dir_all(p("/d")).unwrap();
    fs
}

#[test]
fn synced_prefix_survives_and_unsynced_bytes_do_not() {
    let fs = fs_with_dir();
    let mut f = fs.create_new(p("/d/a")).unwrap();
    f.write_all(b"hello").unwrap();
    f.sync().unwrap();
    f.write_all(b" world").unwrap();
    fs.sync_dir(p("/d")).unwrap();
    assert_eq!(fs.read_all(p("/d/a")).unwrap(), b"hello world");
    assert_eq!(fs.synced_len(p("/d/a")), Some(5));
    let img = fs.crash_image(1, CrashMode::SyncedOnly);
    assert_eq!(img.read_all(p("/d/a")).unwrap(), b"hello");
    for seed in 0..200 {
        for mode in [CrashMode::TornPrefix, CrashMode::Garbage] {
            let got = fs.crash_image(seed, mode).read_all(p("/d/a")).unwrap();
            assert!((5..=11).contains(&got.len()), "{mode:?} {seed}: {got:?}");
            assert_eq!(&got[..5], b"hello");
            if mode == CrashMode::TornPrefix {
                assert_eq!(&got[..], &b"hello world"[..got.len()]);
            }
        }
    }
}

#[test]
fn garbage_mode_sometimes_damages_unsynced_bytes() {
    let fs = fs_with_dir();
    let mut f = fs.create_new(p("/d/a")).unwrap();
    f.write_all(&[0xAA; 64]).unwrap();
    fs.sync_dir(p("/d")).unwrap();
    let damaged = (0..100)
        .filter(|&seed| {
            let got = fs.crash_image(seed, CrashMode::Garbage).read_all(p("/d/a")).unwrap();
            got.iter().any(|&b| b != 0xAA)
        })
        .count();
    assert!(damaged > 50, "only {damaged} of 100 images damaged");
}

#[test]
fn unsynced_create_and_rename_can_be_undone() {
    let fs = fs_with_dir();
    let mut f = fs.create_new(p("/d/tmp")).unwrap();
    f.write_all(b"x").unwrap();
    f.sync().unwrap();
    fs.rename(p("/d/tmp"), p("/d/final")).unwrap();
    assert_eq!(fs.list_dir(p("/d")).unwrap(), vec!["final".to_owned()]);
    let img = fs.crash_image(0, CrashMode::SyncedOnly);
    assert!(img.list_files().is_empty(), "{:?}", img.list_files());
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..100 {
        seen.insert(fs.crash_image(seed, CrashMode::TornPrefix).list_files());
    }
    // Nothing, the temp file, or the final name: never both names.
    assert_eq!(seen.len(), 3, "{seen:?}");
    fs.sync_dir(p("/d")).unwrap();
    let img = fs.crash_image(0, CrashMode::SyncedOnly);
    assert_eq!(img.list_files(), vec![p("/d/final").to_owned()]);
    assert_eq!(img.read_all(p("/d/final")).unwrap(), b"x");
}

#[test]
fn remove_is_durable_only_after_sync_dir() {
    let fs = fs_with_dir();
    fs.write_raw(p("/d/a"), b"abc");
    fs.remove_file(p("/d/a")).unwrap();
    assert!(!fs.exists(p("/d/a")).unwrap());
    assert!(fs.crash_image(0, CrashMode::SyncedOnly).exists(p("/d/a")).unwrap());
    fs.sync_dir(p("/d")).unwrap();
    assert!(!fs.crash_image(0, CrashMode::SyncedOnly).exists(p("/d/a")).unwrap());
}

#[test]
fn nth_operation_fails_once_or_from_then_on() {
    let fs = fs_with_dir();
    let mut f = fs.create_new(p("/d/a")).unwrap();
    fs.set_faults(FaultPlan::new().fail_once(OpKind::Sync, 1).fail_from(OpKind::Write, 2));
    f.sync().unwrap();
    assert!(matches!(f.sync(), Err(Error::Io { op: "fsync", .. })));
    f.sync().unwrap();
    f.write_all(b"a").unwrap();
    f.write_all(b"b").unwrap();
    assert!(f.write_all(b"c").is_err());
    assert!(f.write_all(b"d").is_err());
    assert_eq!(fs.read_all(p("/d/a")).unwrap(), b"ab");
    assert_eq!(fs.op_count(OpKind::Sync), 3);
    assert_eq!(fs.op_count(OpKind::Write), 4);
    assert_eq!(fs.op_count(OpKind::Create), 1);
    assert_eq!(fs.op_count(OpKind::Any), 8);
}

#[test]
fn any_kind_counts_every_operation() {
    let fs = fs_with_dir();
    fs.set_faults(FaultPlan::new().fail_once(OpKind::Any, 2));
    let mut f = fs.create_new(p("/d/a")).unwrap();
    f.write_all(b"a").unwrap();
    assert!(f.sync().is_err());
    f.sync().unwrap();
    assert_eq!(fs.synced_len(p("/d/a")), Some(1));
}

#[test]
fn short_write_and_full_disk_store_a_prefix() {
    let fs = fs_with_dir();
    let mut f = fs.create_new(p("/d/a")).unwrap();
    fs.set_faults(FaultPlan::new().short_write(0, 3));
    assert!(f.write_all(b"abcdef").is_err());
    assert_eq!(fs.read_all(p("/d/a")).unwrap(), b"abc");
    fs.set_faults(FaultPlan::new().disk_full_after(4));
    f.write_all(b"12").unwrap();
    let err = f.write_all(b"345").unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull),
        "{err:?}"
    );
    assert!(f.write_all(b"6").is_err());
    assert_eq!(fs.read_all(p("/d/a")).unwrap(), b"abc1234");
    fs.clear_faults();
    f.write_all(b"!").unwrap();
    assert_eq!(f.len(), 8);
}

#[test]
fn failed_operations_change_nothing() {
    let fs = fs_with_dir();
    fs.write_raw(p("/d/a"), b"abc");
    fs.set_faults(
        FaultPlan::new()
            .fail_once(OpKind::Rename, 0)
            .fail_once(OpKind::Remove, 0)
            .fail_once(OpKind::Truncate, 0)
            .fail_once(OpKind::Create, 0),
    );
    assert!(fs.rename(p("/d/a"), p("/d/b")).is_err());
    assert!(fs.remove_file(p("/d/a")).is_err());
    assert!(fs.truncate(p("/d/a"), 1).is_err());
    assert!(fs.create_new(p("/d/c")).is_err());
    assert_eq!(fs.list_files(), vec![p("/d/a").to_owned()]);
    assert_eq!(fs.read_all(p("/d/a")).unwrap(), b"abc");
}

#[test]
fn truncate_is_durable_and_map_is_a_snapshot() {
    let fs = fs_with_dir();
    let mut f = fs.create_new(p("/d/a")).unwrap();
    f.write_all(b"abcdef").unwrap();
    let map = fs.map(p("/d/a")).unwrap();
    fs.truncate(p("/d/a"), 2).unwrap();
    f.write_all(b"Z").unwrap();
    assert_eq!((*map).as_ref(), b"abcdef");
    assert_eq!(fs.read_all(p("/d/a")).unwrap(), b"abZ");
    assert_eq!(fs.synced_len(p("/d/a")), Some(2));
    let r = fs.open_read(p("/d/a")).unwrap();
    let mut buf = [0; 2];
    r.read_exact_at(&mut buf, 1).unwrap();
    assert_eq!(&buf, b"bZ");
    assert!(r.read_exact_at(&mut buf, 2).is_err());
}

#[test]
fn paths_need_their_parent_directory() {
    let fs = MemFs::new();
    assert!(fs.create_new(p("/nowhere/a")).is_err());
    assert!(fs.list_dir(p("/nowhere")).is_err());
    fs.create_dir_all(p("/x/y")).unwrap();
    fs.create_new(p("/x/y/a")).unwrap();
    assert!(fs.create_new(p("/x/y/a")).is_err());
    assert_eq!(fs.list_dir(p("/x")).unwrap(), vec!["y".to_owned()]);
}

#[test]
fn lock_dir_is_exclusive_until_dropped() {
    let fs = fs_with_dir();
    let lock = fs.lock_dir(p("/d")).unwrap();
    assert!(matches!(fs.clone().lock_dir(p("/d")), Err(Error::Locked { .. })));
    drop(lock);
    let _again = fs.lock_dir(p("/d")).unwrap();
}

#[test]
fn remove_dir_removes_only_an_empty_directory() {
    let fs = fs_with_dir();
    fs.create_dir_all(p("/d/sub")).unwrap();
    fs.write_raw(p("/d/sub/f"), b"x");
    assert!(fs.remove_dir(p("/d/sub")).is_err(), "a file in it");
    assert!(fs.remove_dir(p("/d")).is_err(), "a directory in it");
    fs.remove_file(p("/d/sub/f")).unwrap();
    fs.set_faults(FaultPlan::new().fail_once(OpKind::Remove, 0));
    assert!(fs.remove_dir(p("/d/sub")).is_err(), "the injected fault");
    assert!(fs.exists(p("/d/sub")).unwrap());
    fs.remove_dir(p("/d/sub")).unwrap();
    assert!(!fs.exists(p("/d/sub")).unwrap());
    assert!(fs.remove_dir(p("/d/sub")).is_err(), "gone");
    fs.remove_dir(p("/d")).unwrap();
    assert_eq!(fs.list_files(), Vec::<std::path::PathBuf>::new());
}
