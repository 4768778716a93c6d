//! What a machine has and what a variant needs of one, as plain data: the
//! GPU backends (`BACKENDS`, which `--gpu` may force), what `hardware`
//! probes (`Hardware`, recorded in the state's decided values), a
//! variant's `requires` in the manifest (`Requires`), and whether the one
//! fits the other (`Hardware::fits`).

use crate::error::{Code, Error, Result};
use serde::{Deserialize, Serialize};

/// The GPU backends a variant can require and `--gpu` can force.
pub const BACKENDS: &[&str] = &["cuda", "rocm", "metal", "intel", "cpu"];

/// What a variant needs of the machine (see `Hardware::fits`); every field
/// given must hold.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// Any of these GPU backends: cuda, rocm, metal, intel, cpu.
    #[serde(default)]
    pub gpu: Vec<String>,
    #[serde(default)]
    pub min_vram_gb: Option<f64>,
    #[serde(default)]
    pub min_ram_gb: Option<f64>,
    /// The lowest NVIDIA driver (or ROCm runtime) version, dotted.
    #[serde(default)]
    pub min_driver: Option<String>,
    #[serde(default)]
    pub npu: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// The backend variants are matched against: cuda, rocm, metal, intel or cpu.
    pub gpu: String,
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub vram_mb: Option<u64>,
    /// Driver (NVIDIA) or runtime (ROCm) version.
    #[serde(default)]
    pub driver: Option<String>,
    /// `amd-xdna`, `intel-npu` or `npu`.
    #[serde(default)]
    pub npu: Option<String>,
    #[serde(default)]
    pub ram_mb: Option<u64>,
    /// Free space where the prefix will be.
    #[serde(default)]
    pub disk_free_mb: Option<u64>,
    /// The GPU backend came from `--gpu` / `ONRAMP_GPU`, not a probe.
    #[serde(default)]
    pub forced: bool,
    /// What answered: `nvidia-smi`, `procfs`, `sysfs`, `rocminfo`, ...
    #[serde(default)]
    pub via: Vec<String>,
}

/// Check a `--gpu` value.
pub fn check_backend(v: &str) -> Result<()> {
    if BACKENDS.contains(&v) {
        Ok(())
    } else {
        Err(Error::new(
            Code::Usage,
            format!("--gpu {v:?}: use one of {}", BACKENDS.join(", ")),
        ))
    }
}

/// Apply `--gpu`: the backend is the user's word; with `cpu` no VRAM counts.
pub fn force(hw: &mut Hardware, backend: &str) {
    hw.gpu = backend.to_string();
    hw.forced = true;
    if backend == "cpu" {
        hw.vram_mb = None;
    }
}

fn gb(mb: u64) -> f64 {
    // Tenths of a GB: a "24 GB" card reports 24564 MiB and must count as 24.
    ((mb as f64 / 1024.0) * 10.0).round() / 10.0
}

fn show_gb(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Compare dotted versions numerically ("535.104" >= "535").
fn version_at_least(have: &str, want: &str) -> bool {
    let nums = |s: &str| -> Vec<u64> {
        s.split(['.', '-'])
            .map(|p| {
                p.chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    let (h, w) = (nums(have), nums(want));
    for i in 0..h.len().max(w.len()) {
        let (a, b) = (
            h.get(i).copied().unwrap_or(0),
            w.get(i).copied().unwrap_or(0),
        );
        if a != b {
            return a > b;
        }
    }
    true
}

impl Hardware {
    /// One line for people: "cuda: NVIDIA H200, 140 GB VRAM, driver 550.54; 251 GB RAM".
    pub fn describe(&self) -> String {
        let mut gpu = self.gpu.clone();
        if self.forced {
            gpu.push_str(" (forced by --gpu)");
        }
        let mut parts = Vec::new();
        if let Some(m) = &self.model {
            parts.push(m.clone());
        }
        if let Some(v) = self.vram_mb {
            parts.push(format!("{} GB VRAM", show_gb(gb(v))));
        }
        if let Some(d) = &self.driver {
            parts.push(format!("driver {d}"));
        }
        if !parts.is_empty() {
            gpu = format!("{gpu}: {}", parts.join(", "));
        }
        let mut s = format!("gpu {gpu}");
        if let Some(n) = &self.npu {
            s.push_str(&format!("; npu {n}"));
        }
        if let Some(r) = self.ram_mb {
            s.push_str(&format!("; {} GB RAM", show_gb(gb(r))));
        }
        s
    }

    /// Whether `r` fits this machine: Ok(what it needs and what was found),
    /// or Err(the first thing missing), both for the plan's "why".
    pub fn fits(&self, r: &Requires) -> std::result::Result<String, String> {
        let mut said = Vec::new();
        if !r.gpu.is_empty() {
            let phrase = format!("needs {}, found {}", r.gpu.join(" or "), self.gpu);
            if !r.gpu.contains(&self.gpu) {
                return Err(phrase);
            }
            said.push(phrase);
        }
        let vram = if self.gpu == "cpu" {
            Some(0.0)
        } else {
            self.vram_mb.map(gb)
        };
        for (what, min, have) in [
            ("VRAM", r.min_vram_gb, vram),
            ("RAM", r.min_ram_gb, self.ram_mb.map(gb)),
        ] {
            let Some(min) = min else { continue };
            let phrase = match have {
                Some(h) => format!("needs {} GB {what}, found {}", show_gb(min), show_gb(h)),
                None => format!("needs {} GB {what}, found an unknown amount", show_gb(min)),
            };
            if have.is_none_or(|h| h < min) {
                return Err(phrase);
            }
            said.push(phrase);
        }
        if let Some(min) = &r.min_driver {
            let phrase = format!(
                "needs driver {min}, found {}",
                self.driver.as_deref().unwrap_or("none")
            );
            if self
                .driver
                .as_deref()
                .is_none_or(|d| !version_at_least(d, min))
            {
                return Err(phrase);
            }
            said.push(phrase);
        }
        if r.npu {
            let phrase = format!(
                "needs an NPU, found {}",
                self.npu.as_deref().unwrap_or("none")
            );
            if self.npu.is_none() {
                return Err(phrase);
            }
            said.push(phrase);
        }
        if said.is_empty() {
            said.push("no requirements".into());
        }
        Ok(said.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(gpu: &[&str], vram: Option<f64>) -> Requires {
        Requires {
            gpu: gpu.iter().map(|s| s.to_string()).collect(),
            min_vram_gb: vram,
            ..Default::default()
        }
    }

    #[test]
    fn a_24_gb_card_counts_as_24() {
        let hw = Hardware {
            gpu: "cuda".into(),
            vram_mb: Some(24564),
            ..Default::default()
        };
        assert_eq!(
            hw.fits(&req(&["cuda"], Some(24.0))),
            Ok("needs cuda, found cuda; needs 24 GB VRAM, found 24".into())
        );
        assert_eq!(
            hw.fits(&req(&[], Some(32.0))),
            Err("needs 32 GB VRAM, found 24".into())
        );
        assert!(hw.fits(&req(&["rocm", "metal"], None)).is_err());
    }

    #[test]
    fn cpu_has_no_vram_and_unknowns_do_not_fit() {
        let mut hw = Hardware {
            gpu: "cuda".into(),
            ..Default::default()
        };
        assert!(hw.fits(&req(&[], Some(1.0))).is_err());
        force(&mut hw, "cpu");
        assert_eq!(
            hw.fits(&req(&[], Some(1.0))),
            Err("needs 1 GB VRAM, found 0".into())
        );
        assert_eq!(hw.fits(&Requires::default()), Ok("no requirements".into()));
    }

    #[test]
    fn driver_versions_compare_numerically() {
        assert!(version_at_least("535.104.05", "535"));
        assert!(version_at_least("550.54", "535.104"));
        assert!(!version_at_least("525.60", "535"));
        assert!(version_at_least("6.10", "6.2"));
        assert!(!version_at_least("6.1", "6.2"));
    }
}
