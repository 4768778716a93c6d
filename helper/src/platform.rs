//! What machine this is: OS, CPU architecture, GPU, and the target name
//! (`linux-x86_64`) that manifests key their artifacts by. What differs
//! between operating systems is `sys`'s.

/// The target this helper runs on, e.g. `linux-x86_64`.
pub fn target() -> String {
    format!("{}-{}", os(), arch())
}

pub fn os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "macos",
        "windows" => "windows",
        other => other,
    }
}

pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "arm" => "armv7",
        "x86" => "i686",
        other => other,
    }
}

/// Every target name a manifest may use, plus `any`.
pub const KNOWN_TARGETS: &[&str] = &[
    "any",
    "linux-x86_64",
    "linux-aarch64",
    "linux-armv7",
    "linux-i686",
    "macos-x86_64",
    "macos-aarch64",
    "windows-x86_64",
    "windows-aarch64",
];
