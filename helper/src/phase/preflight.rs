//! Preflight: platform support, local artifacts present, free disk space on
//! every filesystem involved, reachability of remote hosts. Refuses early
//! with exact figures rather than failing at 90 %.

use super::Ctx;
use crate::error::{Code, Error, Result, err};
use crate::fsutil::human_bytes;
use crate::manifest::Source;
use crate::state::Status;
use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Extra room kept free beyond what the plan needs.
const HEADROOM: u64 = 64 * 1024 * 1024;

pub fn run(ctx: &mut Ctx) -> Result<String> {
    check_platform(ctx)?;
    check_local_sources(ctx)?;
    let disk = check_disk(ctx)?;
    let hosts = if ctx.opts.offline {
        "offline: no network checks".to_string()
    } else {
        check_hosts(ctx)?
    };
    Ok(format!("{disk}; {hosts}"))
}

fn check_platform(ctx: &mut Ctx) -> Result<()> {
    for p in ctx.plan.iter().filter(|p| p.no_build) {
        let c = ctx.man.component(&p.id);
        let have: Vec<String> = c
            .map(|c| c.artifacts.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(ch) = ctx
            .man
            .chosen
            .choices
            .get(&p.id)
            .filter(|c| c.variant.is_none())
        {
            let msg = format!(
                "{}: no variant fits this machine ({}); {}",
                p.id,
                ch.why,
                if p.optional {
                    "it will be skipped"
                } else {
                    "use --gpu or another --profile if you know better"
                }
            );
            if p.optional {
                ctx.rep.warn(&msg);
                continue;
            }
            return err(Code::Platform, msg);
        }
        if p.kind == crate::manifest::Kind::Worker && crate::plan::cannot_build(&ctx.target) {
            let msg = crate::plan::worker_unbuilt(&p.id, &ctx.target);
            if p.optional {
                ctx.rep.warn(&format!("{msg}; it will be skipped"));
                continue;
            }
            return err(Code::Platform, msg);
        }
        if p.optional {
            ctx.rep.warn(&format!(
                "{} has no build for {} (available: {}); it will be skipped",
                p.id,
                ctx.target,
                have.join(", ")
            ));
        } else {
            return err(
                Code::Platform,
                format!(
                    "{} requires {}; current: {}. No install is possible on this machine",
                    p.id,
                    have.join(", "),
                    ctx.target
                ),
            );
        }
    }
    Ok(())
}

fn pending(ctx: &Ctx) -> impl Iterator<Item = &crate::plan::Planned> {
    ctx.plan.iter().filter(|p| !p.no_build).filter(|p| {
        ctx.st
            .step(&p.id)
            .is_none_or(|s| !matches!(s.status, Status::Done | Status::Skipped))
    })
}

fn check_local_sources(ctx: &Ctx) -> Result<()> {
    for p in pending(ctx) {
        if let Some(w) = &p.want
            && let Source::Path(path) = &w.source
            && ctx.cache.lookup(w).is_none()
            && !path.is_file()
        {
            return err(
                Code::Manifest,
                format!(
                    "{}: artifact {} does not exist (paths are relative to the manifest's directory)",
                    p.id,
                    path.display()
                ),
            );
        }
    }
    Ok(())
}

/// The nearest existing ancestor of `p` (the prefix may not exist yet).
fn existing(p: &Path) -> PathBuf {
    let mut cur = p.to_path_buf();
    while !cur.exists() {
        if !cur.pop() {
            return PathBuf::from("/");
        }
    }
    cur
}

/// The mount point holding `p`: walk up while the device stays the same.
fn mount_point(p: &Path) -> PathBuf {
    let p = existing(p);
    let Some(dev) = crate::sys::device_of(&p) else {
        return p;
    };
    let mut cur = p.clone();
    while let Some(parent) = cur.parent() {
        match crate::sys::device_of(parent) {
            Some(d) if d == dev => cur = parent.to_path_buf(),
            _ => break,
        }
    }
    cur
}

fn check_disk(ctx: &Ctx) -> Result<String> {
    let cache_at = existing(&ctx.cache.root);
    let prefix_at = existing(&ctx.prefix);
    let dev = |p: &Path| crate::sys::device_of(p).unwrap_or(0);
    let same_fs = dev(&cache_at) == dev(&prefix_at);
    // device -> (a path on it, bytes needed)
    let mut need: BTreeMap<u64, (PathBuf, u64)> = BTreeMap::new();
    // Sizes come from the manifest: a sum past u64 is refused, not wrapped.
    let too_big = || {
        Error::new(
            Code::Manifest,
            "the manifest's artifact sizes add up to more than 18 EB; check its \"size\" and \"unpacked_size\" values",
        )
    };
    let mut add = |p: &Path, n: u64| -> Result<()> {
        let e = need.entry(dev(p)).or_insert_with(|| (mount_point(p), 0));
        e.1 = e.1.checked_add(n).ok_or_else(too_big)?;
        Ok(())
    };
    for p in pending(ctx) {
        let Some(w) = &p.want else { continue };
        if ctx.cache.lookup(w).is_none() {
            add(&cache_at, w.size.saturating_sub(ctx.cache.partial_len(w)))?;
        }
        match p.unpack {
            Some(_) => add(
                &prefix_at,
                p.unpacked_size
                    .or(w.size.checked_mul(4))
                    .ok_or_else(too_big)?,
            )?,
            None if !same_fs => add(&prefix_at, w.size)?,
            None => {}
        }
    }
    add(&prefix_at, 0)?;
    let mut report = Vec::new();
    for (mount, bytes) in need.values() {
        let want = bytes.checked_add(HEADROOM).ok_or_else(too_big)?;
        let free = crate::fsutil::free_bytes(mount)?;
        if free < want {
            return err(
                Code::Disk,
                format!(
                    "not enough disk space: need {} on {}, {} free; free some space or choose another --prefix or XDG_CACHE_HOME",
                    human_bytes(want),
                    mount.display(),
                    human_bytes(free)
                ),
            );
        }
        report.push(format!(
            "{} needed on {} ({} free)",
            human_bytes(*bytes),
            mount.display(),
            human_bytes(free)
        ));
    }
    Ok(report.join(", "))
}

/// host:port of an http(s) URL.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let auth = rest.split(['/', '?', '#']).next()?;
    let auth = auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth);
    let default = if scheme == "https" { 443 } else { 80 };
    if let Some(v6) = auth.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return Some((h.to_string(), port));
    }
    match auth.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((auth.to_string(), default)),
    }
}

fn reachable(h: &str, port: u16) -> bool {
    (h, port)
        .to_socket_addrs()
        .map(|addrs| {
            addrs
                .into_iter()
                .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok())
        })
        .unwrap_or(false)
}

/// Every artifact still to fetch needs one reachable source (a mirror or its own URL).
fn check_hosts(ctx: &Ctx) -> Result<String> {
    let mut seen: BTreeMap<(String, u16), bool> = BTreeMap::new();
    for p in pending(ctx) {
        let Some(w) = &p.want else { continue };
        let urls = match &w.source {
            Source::Path(_) => continue,
            Source::Url(u) => crate::download::sources(u, &ctx.opts.mirrors)
                .into_iter()
                .map(|x| x.0)
                .collect(),
            _ => crate::download::hub::base_urls(w, &ctx.opts.mirrors)?,
        };
        if ctx.cache.lookup(w).is_some()
            || crate::download::found_in(&ctx.opts.reuse, w).is_some()
            || ctx
                .opts
                .from
                .as_ref()
                .is_some_and(|d| d.join("sha256").join(&w.sha256).is_file())
        {
            continue;
        }
        let mut tried = Vec::new();
        let mut ok = false;
        for url in urls {
            let hp = host_port(&url).ok_or_else(|| {
                Error::new(
                    Code::Manifest,
                    format!("{}: cannot read the host of {url}", p.id),
                )
            })?;
            let up = *seen
                .entry(hp.clone())
                .or_insert_with(|| reachable(&hp.0, hp.1));
            tried.push(format!("{}:{}", hp.0, hp.1));
            if up {
                ok = true;
                break;
            }
        }
        if !ok {
            return err(
                Code::Network,
                format!(
                    "{}: cannot reach {}; check the network or proxy, or use --offline with --from DIR",
                    p.id,
                    tried.join(" or ")
                ),
            );
        }
    }
    let up = seen.values().filter(|v| **v).count();
    Ok(if seen.is_empty() {
        "no downloads needed".into()
    } else {
        format!("{up} host(s) reachable")
    })
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn host_ports() {
        assert_eq!(
            host_port("https://a.example/x"),
            Some(("a.example".into(), 443))
        );
        assert_eq!(
            host_port("http://127.0.0.1:8080/x?y"),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(host_port("http://[::1]:81/"), Some(("::1".into(), 81)));
        assert_eq!(host_port("https://u:p@h:9/"), Some(("h".into(), 9)));
    }
}
