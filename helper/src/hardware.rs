//! What the machine can run: GPU (vendor, model, VRAM, driver), NPU, RAM
//! and free disk, probed without root and with every command bounded by a
//! timeout. What is found, and whether a variant's `requires` fits it, is
//! `machine`'s plain data.
//!
//! Probes read sysfs/procfs under `ONRAMP_HW_ROOT` (default `/`, so tests
//! can hand in a fake tree) and run `nvidia-smi` / `rocminfo` from PATH
//! (with `ONRAMP_HW_ROOT` set: from its usr/bin and bin only, so a fake
//! machine is not mixed with the real one's tools).
//! The result is recorded in the state's decided values at `begin`; a
//! resumed install reads it back instead of probing again.

use crate::machine::Hardware;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one probe command may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(4);

/// Probe this machine. `prefix` is where the install goes (for free disk).
pub fn probe(prefix: &Path) -> Hardware {
    let root = std::env::var_os("ONRAMP_HW_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut hw = Hardware {
        gpu: "cpu".into(),
        ..Default::default()
    };
    let gpus = if crate::platform::os() == "macos" {
        apple(&root, &mut hw);
        Vec::new()
    } else {
        let mut g = nvidia(&root);
        g.extend(drm(&root));
        g
    };
    // The best GPU: a usable backend first, then the most VRAM.
    if let Some(best) = gpus.into_iter().max_by_key(|g| {
        (
            g.gpu != "cpu",
            rank(g.vendor.as_deref()),
            g.vram_mb.unwrap_or(0),
        )
    }) {
        let (ram, via) = (hw.ram_mb, std::mem::take(&mut hw.via));
        hw = best;
        hw.ram_mb = ram;
        hw.via.splice(0..0, via);
    }
    if hw.ram_mb.is_none() {
        hw.ram_mb = meminfo(&root);
        if hw.ram_mb.is_some() {
            hw.via.push("meminfo".into());
        }
    }
    hw.npu = npu(&root);
    hw.disk_free_mb = prefix
        .ancestors()
        .find(|p| p.exists())
        .and_then(|p| crate::fsutil::free_bytes(p).ok())
        .map(|b| b / (1024 * 1024));
    hw
}

fn rank(vendor: Option<&str>) -> u8 {
    match vendor {
        Some("nvidia") => 3,
        Some("amd") => 2,
        Some("intel") => 1,
        _ => 0,
    }
}

fn read(p: &Path) -> Option<String> {
    // Bounded: sysfs and procfs files here are small; refuse anything big.
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(p)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Run a probe command with a timeout; its stdout when it exits 0.
fn command(root: &Path, name: &str, args: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = if root == Path::new("/") {
        std::env::split_paths(&path).collect()
    } else {
        vec![under(root, "/usr/bin"), under(root, "/bin")]
    };
    let prog = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())?;
    let mut argv = vec![prog.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let env = vec![
        ("PATH".to_string(), path.to_string_lossy().into_owned()),
        ("LC_ALL".to_string(), "C".to_string()),
    ];
    let out = crate::run::run(&argv, Path::new("/"), &env, PROBE_TIMEOUT, false).ok()?;
    out.ok().then_some(out.stdout)
}

fn nvidia(root: &Path) -> Vec<Hardware> {
    let mut found = Vec::new();
    if let Some(text) = command(
        root,
        "nvidia-smi",
        &[
            "--query-gpu=name,memory.total,driver_version",
            "--format=csv,noheader,nounits",
        ],
    ) {
        for line in text.lines() {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() < 3 || f[0].is_empty() {
                continue;
            }
            found.push(Hardware {
                gpu: "cuda".into(),
                vendor: Some("nvidia".into()),
                model: Some(clean(f[0])),
                vram_mb: f[1].parse().ok(),
                driver: Some(clean(f[2])).filter(|d| !d.is_empty()),
                via: vec!["nvidia-smi".into()],
                ..Default::default()
            });
        }
        if !found.is_empty() {
            return found;
        }
    }
    // No nvidia-smi: the kernel module's own files, and libcuda for CUDA.
    let proc = under(root, "/proc/driver/nvidia");
    if !proc.is_dir() {
        return found;
    }
    let driver = read(&proc.join("version")).and_then(|v| {
        v.split_whitespace()
            .skip_while(|w| *w != "Module")
            .nth(1)
            .map(clean)
    });
    let libcuda = [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/lib/aarch64-linux-gnu/libcuda.so.1",
        "/usr/lib64/libcuda.so.1",
        "/usr/lib/libcuda.so.1",
        "/usr/lib/wsl/lib/libcuda.so.1",
    ]
    .iter()
    .any(|p| under(root, p).exists());
    let mut models: Vec<String> = std::fs::read_dir(proc.join("gpus"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| read(&e.path().join("information")))
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("Model:").map(clean))
        })
        .collect();
    models.sort();
    let mut via = vec!["procfs".to_string()];
    if libcuda {
        via.push("libcuda".into());
    }
    found.push(Hardware {
        // Without libcuda nothing can use the GPU through CUDA.
        gpu: if libcuda { "cuda" } else { "cpu" }.into(),
        vendor: Some("nvidia".into()),
        model: models.pop(),
        driver,
        via,
        ..Default::default()
    });
    found
}

/// AMD and Intel GPUs (and NVIDIA ones nvidia() missed) from /sys/class/drm.
fn drm(root: &Path) -> Vec<Hardware> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(under(root, "/sys/class/drm")) else {
        return found;
    };
    let mut cards: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.strip_prefix("card")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.path().join("device"))
        .collect();
    cards.sort();
    let rocm = rocminfo(root);
    for dev in cards {
        let Some(vendor) = read(&dev.join("vendor")) else {
            continue;
        };
        let vram_mb = read(&dev.join("mem_info_vram_total"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|b| b / (1024 * 1024));
        let model = read(&dev.join("product_name"))
            .map(|s| clean(&s))
            .filter(|s| !s.is_empty());
        let hw = match vendor.trim() {
            "0x1002" => {
                let kfd = under(root, "/dev/kfd").exists();
                let mut via = vec!["sysfs".to_string()];
                if rocm.is_some() {
                    via.push("rocminfo".into());
                }
                Hardware {
                    gpu: if kfd || rocm.is_some() { "rocm" } else { "cpu" }.into(),
                    vendor: Some("amd".into()),
                    model: model.or_else(|| rocm.as_ref().and_then(|r| r.0.clone())),
                    vram_mb,
                    driver: rocm.as_ref().and_then(|r| r.1.clone()),
                    via,
                    ..Default::default()
                }
            }
            "0x8086" => Hardware {
                gpu: "intel".into(),
                vendor: Some("intel".into()),
                model,
                vram_mb,
                via: vec!["sysfs".into()],
                ..Default::default()
            },
            _ => continue,
        };
        found.push(hw);
    }
    found
}

/// rocminfo's first GPU marketing name and its runtime version, when present.
fn rocminfo(root: &Path) -> Option<(Option<String>, Option<String>)> {
    let text = command(root, "rocminfo", &[])?;
    let field = |key: &str| {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(key).map(clean))
            .find(|v| !v.is_empty() && !v.contains("CPU"))
    };
    Some((field("Marketing Name:"), field("Runtime Version:")))
}

fn apple(root: &Path, hw: &mut Hardware) {
    let brand = command(root, "sysctl", &["-n", "machdep.cpu.brand_string"]).unwrap_or_default();
    let mem = command(root, "sysctl", &["-n", "hw.memsize"])
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|b| b / (1024 * 1024));
    hw.ram_mb = mem;
    hw.via.push("sysctl".into());
    if brand.contains("Apple") {
        // Unified memory: the GPU can use what the machine has.
        hw.gpu = "metal".into();
        hw.vendor = Some("apple".into());
        hw.model = Some(clean(&brand));
        hw.vram_mb = mem;
    }
}

fn meminfo(root: &Path) -> Option<u64> {
    read(&under(root, "/proc/meminfo"))?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb / 1024)
}

fn npu(root: &Path) -> Option<String> {
    let rd = std::fs::read_dir(under(root, "/sys/class/accel")).ok()?;
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let vendor = read(&e.path().join("device/vendor"))?;
            Some(
                match vendor.trim() {
                    "0x1022" | "0x1002" => "amd-xdna",
                    "0x8086" => "intel-npu",
                    _ => "npu",
                }
                .to_string(),
            )
        })
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Text from a probe, made safe to print: control characters dropped,
/// at most 80 characters.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect::<String>()
        .trim()
        .to_string()
}
