//! What machine this is: OS, CPU architecture, GPU, and the target name
//! (`linux-x86_64`) that manifests key their artifacts by.

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

/// A best-effort GPU probe from device nodes and sysfs; `none` when nothing
/// is found. Only used to record the decision, never to guess silently.
pub fn gpu() -> String {
    use std::path::Path;
    if Path::new("/dev/nvidia0").exists() || Path::new("/proc/driver/nvidia").exists() {
        return "nvidia".into();
    }
    if Path::new("/dev/kfd").exists() {
        return "amd".into();
    }
    if let Ok(rd) = std::fs::read_dir("/sys/class/drm") {
        for e in rd.flatten() {
            let vendor = e.path().join("device/vendor");
            if let Ok(v) = std::fs::read_to_string(vendor) {
                match v.trim() {
                    "0x1002" => return "amd".into(),
                    "0x10de" => return "nvidia".into(),
                    "0x8086" => return "intel".into(),
                    _ => {}
                }
            }
        }
    }
    "none".into()
}
