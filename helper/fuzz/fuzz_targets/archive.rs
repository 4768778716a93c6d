//! Extraction of any bytes as an archive (tar, tar.gz or tar.zst by its
//! magic) into a fresh directory: it succeeds or refuses, never panics, and
//! nothing lands outside: the scratch directory holds only the target, and
//! every link in the target resolves inside it or nowhere.
#![no_main]
use libfuzzer_sys::fuzz_target;
use onramp::archive::{Limits, extract};
use onramp::manifest::Unpack;
use std::path::Path;

fn inside(root: &Path, dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if let Ok(real) = std::fs::canonicalize(&p) {
            assert!(
                real.starts_with(root),
                "{} resolves to {}",
                p.display(),
                real.display()
            );
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            inside(root, &p);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let kind = match data {
        [0x1f, 0x8b, ..] => Unpack::TarGz,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Unpack::TarZst,
        _ => Unpack::Tar,
    };
    let scratch = std::env::temp_dir().join(format!("onramp-fuzz-archive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("in")).unwrap();
    let file = scratch.join("in/a");
    std::fs::write(&file, data).unwrap();
    let dest = scratch.join("out");
    let limits = Limits::for_file(&file, Some(1 << 20), None);
    let _ = extract(&file, kind, &dest, &limits);
    // Nothing but what we made sits in the scratch directory.
    let mut names: Vec<String> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names == ["in"] || names == ["in", "out"], "{names:?}");
    if let Ok(root) = std::fs::canonicalize(&dest) {
        inside(&root, &root);
    }
    let _ = std::fs::remove_dir_all(&scratch);
});
