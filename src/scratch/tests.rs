use super::*;
use std::fs::Permissions;
use std::os::unix::fs::{PermissionsExt, symlink};

fn scratch() -> Scratch {
    Scratch::create(Medium::RamOrDisk).unwrap()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn on_ram(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|fs| {
        #[allow(clippy::unnecessary_cast)]
        let magic = fs.f_type as u32;
        magic == TMPFS_MAGIC || magic == RAMFS_MAGIC
    })
}

#[test]
fn directory_is_0700_and_files_get_the_mode_asked_for() {
    let s = scratch();
    assert_eq!(mode_of(s.path()), 0o700);
    assert!(
        s.path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("keys-")
    );
    let p = s.create_file("secret.yaml", b"a: 1\n", 0o600).unwrap();
    assert_eq!(p, s.path().join("secret.yaml"));
    assert_eq!(mode_of(&p), 0o600);
    assert_eq!(std::fs::read(&p).unwrap(), b"a: 1\n");
    let q = s.create_file("other", b"", 0o400).unwrap();
    assert_eq!(mode_of(&q), 0o400);
}

#[test]
fn create_file_refuses_existing_names_symlinks_and_bad_names() {
    let s = scratch();
    s.create_file("f", b"one", 0o600).unwrap();
    assert!(matches!(
        s.create_file("f", b"two", 0o600),
        Err(Error::Exists { .. })
    ));
    assert_eq!(std::fs::read(s.path().join("f")).unwrap(), b"one");

    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("target");
    symlink(&target, s.path().join("link")).unwrap();
    assert!(matches!(
        s.create_file("link", b"x", 0o600),
        Err(Error::Exists { .. })
    ));
    assert!(!target.exists());

    for bad in ["", ".", "..", "a/b", "/etc/passwd", "../x", "nul\0"] {
        assert!(
            matches!(s.create_file(bad, b"x", 0o600), Err(Error::Bug { .. })),
            "{bad:?} was accepted"
        );
    }
}

#[test]
fn read_file_refuses_symlinks_oversize_and_paths_outside() {
    let s = scratch();
    let p = s.create_file("f", b"hello", 0o600).unwrap();
    assert_eq!(&s.read_file(&p, 5).unwrap()[..], b"hello");
    assert_eq!(&s.read_file(Path::new("f"), 5).unwrap()[..], b"hello");
    match s.read_file(&p, 4) {
        Err(Error::InvalidFile { at, reason }) => {
            assert_eq!(at.file, p.display().to_string());
            assert!(reason.contains("limit of 4"), "{reason}");
        }
        other => panic!("oversize file read: {other:?}"),
    }

    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("target");
    std::fs::write(&target, b"not yours").unwrap();
    symlink(&target, s.path().join("link")).unwrap();
    assert!(matches!(
        s.read_file(&s.path().join("link"), 100),
        Err(Error::InvalidFile { .. })
    ));
    std::fs::create_dir(s.path().join("sub")).unwrap();
    assert!(matches!(
        s.read_file(&s.path().join("sub"), 100),
        Err(Error::InvalidFile { .. })
    ));
    for bad in [
        target.clone(),
        s.path().join("sub/f"),
        s.path().join(".."),
        PathBuf::from("sub/f"),
    ] {
        assert!(
            matches!(s.read_file(&bad, 100), Err(Error::Bug { .. })),
            "{} was read",
            bad.display()
        );
    }
}

#[test]
fn drop_zero_fills_and_removes_everything_an_editor_left() {
    let s = scratch();
    let dir = s.path().to_path_buf();
    let p = s.create_file("secret", b"plaintext", 0o600).unwrap();
    // What vim's `:w` does: write a new file, rename it over the old one.
    std::fs::write(dir.join("secret.new"), b"edited plaintext").unwrap();
    std::fs::rename(dir.join("secret.new"), &p).unwrap();
    let held = File::open(&p).unwrap();
    // Backups, swap files, subdirectories, read-only files, symlinks out.
    std::fs::write(dir.join("secret~"), b"old plaintext").unwrap();
    std::fs::write(dir.join(".secret.swp"), b"swap").unwrap();
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    std::fs::write(dir.join("sub/deeper/f"), b"x").unwrap();
    let ro = dir.join("sub/readonly");
    std::fs::write(&ro, b"ro plaintext").unwrap();
    std::fs::set_permissions(&ro, Permissions::from_mode(0o400)).unwrap();
    let held_ro = File::open(&ro).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let keep = outside.path().join("keep");
    std::fs::write(&keep, b"keep").unwrap();
    symlink(&keep, dir.join("link-out")).unwrap();
    symlink(outside.path(), dir.join("dir-link-out")).unwrap();

    drop(s);

    assert!(!dir.exists());
    assert_eq!(std::fs::read(&keep).unwrap(), b"keep");
    assert!(outside.path().exists());
    let mut seen = Vec::new();
    (&held).read_to_end(&mut seen).unwrap();
    assert_eq!(seen, vec![0u8; b"edited plaintext".len()]);
    seen.clear();
    (&held_ro).read_to_end(&mut seen).unwrap();
    assert_eq!(seen, vec![0u8; b"ro plaintext".len()]);
}

#[test]
fn create_in_refuses_disk_unless_allowed() {
    let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let fallback = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let missing = disk.path().join("missing");
    let a_file = disk.path().join("file");
    std::fs::write(&a_file, b"").unwrap();
    let candidates = [
        disk.path().to_path_buf(),
        missing.clone(),
        a_file.clone(),
        PathBuf::from("relative"),
    ];
    if !on_ram(disk.path()) {
        let disk_dir = disk.path();
        match create_in(&candidates, Medium::Ram, fallback.path(), None) {
            Err(Error::NoRuntimeDir { refused, disk, .. }) => {
                let refused = refused.join("; ");
                assert!(
                    refused.contains(&format!("{} is not on tmpfs", disk_dir.display())),
                    "{refused}"
                );
                assert!(refused.contains(&format!("{} does not exist", missing.display())));
                assert!(refused.contains(&format!("{} is not a directory", a_file.display())));
                assert!(refused.contains("relative is not an absolute path"));
                assert_eq!(disk, fallback.path());
            }
            other => panic!("disk accepted: {other:?}"),
        }
        let s = create_in(&candidates, Medium::RamOrDisk, fallback.path(), None).unwrap();
        assert_eq!(s.path().parent(), Some(fallback.path()));
        assert_eq!(mode_of(s.path()), 0o700);
    }
    let shm = PathBuf::from("/dev/shm");
    if on_ram(&shm) {
        let s = create_in(
            &[disk.path().to_path_buf(), shm.clone()],
            Medium::Ram,
            fallback.path(),
            None,
        )
        .unwrap();
        assert_eq!(s.path().parent(), Some(shm.as_path()));
    }
    assert_eq!(std::fs::read_dir(disk.path()).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(fallback.path()).unwrap().count(), 0);
}

/// macOS's path, taken on this system by handing `create_in` a disk directory as
/// the per-user temporary directory: a 0700 directory on disk, 0600 files,
/// zero-filled before removal, and said so (`in_user_temp`).
#[test]
fn the_user_temp_directory_takes_plaintext_when_there_is_no_tmpfs() {
    let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    if on_ram(disk.path()) {
        return; // the checkout is on tmpfs: there is no disk here to point at
    }
    let user_temp = disk.path().join("T");
    std::fs::create_dir(&user_temp).unwrap();
    std::fs::set_permissions(&user_temp, Permissions::from_mode(0o700)).unwrap();
    let fallback = disk.path().join("fallback");
    std::fs::create_dir(&fallback).unwrap();
    let not_ram = [disk.path().to_path_buf()];

    let s = create_in(
        &not_ram,
        Medium::Ram,
        &fallback,
        Some(Ok(user_temp.clone())),
    )
    .unwrap();
    assert!(s.in_user_temp());
    assert_eq!(s.path().parent(), Some(user_temp.as_path()));
    assert_eq!(mode_of(s.path()), 0o700);
    assert!(!on_ram(s.path()), "the test is meant to write to a disk");
    let dir = s.path().to_path_buf();
    let p = s.create_file("secret", b"disk plaintext", 0o600).unwrap();
    assert_eq!(mode_of(&p), 0o600);
    let held = File::open(&p).unwrap();
    drop(s);
    assert!(!dir.exists());
    let mut seen = Vec::new();
    (&held).read_to_end(&mut seen).unwrap();
    assert_eq!(seen, vec![0u8; 14], "zero-filled before removal");

    // A tmpfs candidate still comes first, and its directory says nothing.
    let shm = PathBuf::from("/dev/shm");
    if on_ram(&shm) {
        let s = create_in(&[shm], Medium::Ram, &fallback, Some(Ok(user_temp.clone()))).unwrap();
        assert!(!s.in_user_temp());
    }

    // One that others may enter is refused, and so is a $TMPDIR elsewhere.
    std::fs::set_permissions(&user_temp, Permissions::from_mode(0o755)).unwrap();
    let refused = |user_temp| match create_in(&not_ram, Medium::Ram, &fallback, user_temp) {
        Err(Error::NoRuntimeDir { refused, .. }) => refused.join("; "),
        other => panic!("accepted: {other:?}"),
    };
    let why = refused(Some(Ok(user_temp.clone())));
    assert!(
        why.contains(&format!(
            "{} is open to group or others (mode 755)",
            user_temp.display()
        )),
        "{why}"
    );
    let why = refused(Some(user_temp_dir(&user_temp)));
    assert!(
        why.contains("is not the per-user temporary directory macOS makes"),
        "{why}"
    );
    // Without the macOS path (every other system), disk is never taken.
    assert!(refused(None).contains("is not on tmpfs"));
    assert_eq!(std::fs::read_dir(&user_temp).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&fallback).unwrap().count(), 0);
}

#[test]
fn only_macos_puts_plaintext_in_the_user_temp_directory() {
    assert_eq!(USER_TEMP_ON_DISK, cfg!(target_os = "macos"));
    for (path, ok) in [
        ("/var/folders/xy/abc123/T", true),
        ("/private/var/folders/xy/abc123/T", true),
        ("/tmp", false),
        ("/Users/me/Dropbox", false),
        ("/var/foldersx", false),
    ] {
        let text = path.to_string();
        assert_eq!(
            DARWIN_USER_TEMP.iter().any(|p| text.starts_with(p)),
            ok,
            "{path}"
        );
    }
}

#[test]
fn a_base_must_be_the_users_own_and_private_or_roots_sticky_directory() {
    // Owner, mode, the user: the verdict (Ok, or the start of the reason).
    let cases: &[(u32, u32, u32, Result<(), &str>)] = &[
        (1000, 0o40700, 1000, Ok(())),
        (1000, 0o40755, 1000, Ok(())),
        (0, 0o41777, 1000, Ok(())),
        (0, 0o41777, 0, Ok(())),
        (0, 0o40700, 0, Ok(())),
        // `sudo -E`: root runs with the invoking user's runtime directory.
        (
            1000,
            0o40700,
            0,
            Err("is owned by uid 1000, not by you (uid 0)"),
        ),
        (12345, 0o40700, 1000, Err("is owned by uid 12345")),
        (12345, 0o41777, 1000, Err("is owned by uid 12345")),
        (0, 0o40755, 1000, Err("is owned by uid 0")),
        (
            1000,
            0o40770,
            1000,
            Err("is writable by group or others (mode 770)"),
        ),
        (1000, 0o40702, 1000, Err("is writable by group or others")),
        (1000, 0o41777, 1000, Err("is writable by group or others")),
    ];
    for (uid, mode, euid, want) in cases {
        let got = safe_base(*uid, *mode, *euid);
        match (want, &got) {
            (Ok(()), Ok(())) => {}
            (Err(start), Err(why)) if why.starts_with(start) => {}
            _ => panic!("owner {uid} mode {mode:o} user {euid}: {got:?}"),
        }
    }
    assert!(safe_ancestor(0, 0o40755, 1000).is_ok());
    assert!(safe_ancestor(0, 0o41777, 1000).is_ok());
    assert!(safe_ancestor(1000, 0o40700, 1000).is_ok());
    assert!(safe_ancestor(12345, 0o40755, 1000).is_err());
    assert!(safe_ancestor(1000, 0o40777, 1000).is_err());
}

#[test]
fn a_runtime_dir_of_another_user_is_passed_over() {
    if !rustix::process::geteuid().is_root() {
        return; // only root can give a directory away; the rule is tested above
    }
    let foreign = tempfile::tempdir_in("/dev/shm").unwrap();
    std::fs::set_permissions(foreign.path(), Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(foreign.path(), Some(12345), None).unwrap();
    let fallback = tempfile::tempdir().unwrap();
    match create_in(
        &[foreign.path().to_path_buf()],
        Medium::Ram,
        fallback.path(),
        None,
    ) {
        Err(e @ Error::NoRuntimeDir { .. }) => assert!(
            e.to_string().contains(&format!(
                "{} is owned by uid 12345, not by you (uid 0)",
                foreign.path().display()
            )),
            "{e}"
        ),
        other => panic!("a foreign runtime directory was used: {other:?}"),
    }
    let s = create_in(
        &[foreign.path().to_path_buf(), PathBuf::from("/dev/shm")],
        Medium::Ram,
        fallback.path(),
        None,
    )
    .unwrap();
    assert_eq!(s.path().parent(), Some(Path::new("/dev/shm")));
    assert_eq!(std::fs::read_dir(foreign.path()).unwrap().count(), 0);
}

#[test]
fn scratch_names_carry_the_pid_and_kept_ones_do_not() {
    let s = scratch();
    let name = s.path().file_name().unwrap().to_owned();
    assert_eq!(scratch_pid(&name), Some(std::process::id()), "{name:?}");
    let base = s.path().parent().unwrap().to_path_buf();
    s.create_file("f", b"x", 0o600).unwrap();
    let kept = s.keep();
    assert_eq!(kept.parent(), Some(base.as_path()));
    let kept_name = kept.file_name().unwrap();
    assert!(
        kept_name.to_string_lossy().starts_with("keys-kept-"),
        "{kept_name:?}"
    );
    assert_eq!(scratch_pid(kept_name), None);
    assert_eq!(std::fs::read(kept.join("f")).unwrap(), b"x");
    wipe(&kept).unwrap();
    for (name, pid) in [
        ("keys-123-abcDEF", Some(123)),
        ("keys-1-x", Some(1)),
        ("keys-kept-abcDEF", None),
        ("keys-abcDEF", None),
        ("keys--abc", None),
        ("keys-12-", None),
        ("other-12-abc", None),
    ] {
        assert_eq!(scratch_pid(OsStr::new(name)), pid, "{name}");
    }
}

#[test]
fn what_a_dead_process_left_is_found_and_wiped_and_nothing_else() {
    let base = tempfile::tempdir().unwrap();
    // A pid that is certainly not running: a child that has exited and been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let alive = std::process::id();
    let parent = rustix::process::getppid().map_or(1, |p| p.as_raw_nonzero().get() as u32);
    let make = |name: String| {
        let dir = base.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("secret"), b"plaintext").unwrap();
        dir
    };
    let left = make(format!("keys-{dead}-AbCdEf"));
    let live = make(format!("keys-{alive}-AbCdEf"));
    let other_live = make(format!("keys-{parent}-AbCdEf"));
    let kept = make("keys-kept-AbCdEf".into());
    let unrelated = make(format!("notkeys-{dead}-x"));
    std::os::unix::fs::symlink(&kept, base.path().join(format!("keys-{dead}-link"))).unwrap();
    let held = File::open(left.join("secret")).unwrap();

    let found = find_leftovers([base.path()]);
    assert_eq!(
        found,
        [Leftover {
            path: left.clone(),
            pid: dead
        }]
    );
    assert_eq!(sweep([base.path()]), found);
    assert!(!left.exists());
    let mut seen = Vec::new();
    (&held).read_to_end(&mut seen).unwrap();
    assert_eq!(seen, vec![0u8; 9], "zero-filled before removal");
    for dir in [&live, &other_live, &kept, &unrelated] {
        assert_eq!(std::fs::read(dir.join("secret")).unwrap(), b"plaintext");
    }
    assert!(find_leftovers([base.path()]).is_empty());
}
