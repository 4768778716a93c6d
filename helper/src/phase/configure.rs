//! Configure: create directories and write config files atomically. A file
//! the user changed since onramp wrote it is never overwritten: the new
//! version goes beside it as `<name>.new`, and the summary says so. Then
//! the services start (see `service`), each ready before validate runs its
//! health checks; one already running what it should is left alone.

use super::Ctx;
use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::service;
use crate::state::Status;
use std::time::{Duration, Instant};

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let cfg = ctx.man.m.configure.clone();
    fsutil::mkdirs(&ctx.prefix)?;
    let new: Vec<String> = cfg
        .dirs
        .iter()
        .filter(|d| !ctx.st.config_dirs.contains(d))
        .cloned()
        .collect();
    if !new.is_empty() {
        ctx.st.config_dirs.extend(new);
        ctx.save()?;
    }
    // Inside the prefix, by descriptor: a link there (from a package, an
    // archive) is never written through (see `beneath`).
    for d in &cfg.dirs {
        crate::beneath::mkdirs(&ctx.prefix, d)?;
    }
    let mut written = 0;
    let mut kept = Vec::new();
    for f in &cfg.files {
        let data = match (&f.content, &f.source) {
            (Some(c), _) => c.clone().into_bytes(),
            (None, Some(s)) => {
                let p = ctx.man.dir.join(s);
                let bytes = read_source(&p)?;
                // Checked here, where it is used: the pin is the manifest's.
                if let Some(want) = &f.sha256 {
                    let got = fsutil::sha256_bytes(&bytes);
                    if &got != want {
                        return Err(Error::new(
                            Code::Integrity,
                            format!(
                                "configure: {} has sha256 {got}, but the manifest pins {want}; it was changed after the manifest was made, get the stack again",
                                p.display()
                            ),
                        ));
                    }
                }
                bytes
            }
            (None, None) => continue,
        };
        let mode = f
            .mode
            .as_deref()
            .and_then(crate::manifest::parse_mode)
            .unwrap_or(0o644);
        let new_sha = fsutil::sha256_bytes(&data);
        let cur_sha = crate::beneath::read(&ctx.prefix, &f.path)?.map(|c| fsutil::sha256_bytes(&c));
        let user_changed = cur_sha
            .as_ref()
            .is_some_and(|c| c != &new_sha && ctx.st.managed_files.get(&f.path) != Some(c));
        // Already as it should be: left alone (same inode, same mtime).
        let same_mode = crate::beneath::file_mode(&ctx.prefix, &f.path)? == Some(mode);
        if cur_sha.as_ref() == Some(&new_sha) && same_mode {
            if ctx.st.managed_files.get(&f.path) != Some(&new_sha) {
                ctx.st.managed_files.insert(f.path.clone(), new_sha);
                ctx.save()?;
            }
            continue;
        }
        if user_changed {
            let side = format!("{}.new", f.path);
            crate::beneath::write_atomic(&ctx.prefix, &side, &data, mode)?;
            ctx.rep.warn(&format!(
                "{} was changed by you; kept it and wrote the new version to {}",
                f.path,
                ctx.prefix.join(&side).display()
            ));
            kept.push(f.path.clone());
            continue;
        }
        crate::beneath::write_atomic(&ctx.prefix, &f.path, &data, mode)?;
        ctx.st.managed_files.insert(f.path.clone(), new_sha);
        ctx.save()?;
        written += 1;
    }
    let services = start_services(ctx)?;
    let exposed = expose(ctx)?;
    let mut msg = format!(
        "{} dir(s), {written} file(s) written, {} already as they should be",
        cfg.dirs.len(),
        cfg.files.len() - written - kept.len()
    );
    if !services.is_empty() {
        msg.push_str(&format!("; {}", services.join(", ")));
    }
    if !exposed.is_empty() {
        msg.push_str(&format!("; on PATH: {}", exposed.join(", ")));
    }
    if !kept.is_empty() {
        msg.push_str(&format!(
            ", {} kept as changed by you (see *.new)",
            kept.len()
        ));
    }
    Ok(msg)
}

/// The most bytes a configure source may have (it is a config file).
const MAX_SOURCE: u64 = 16 << 20;

/// A configure source: a regular file (never a link's target, never a FIFO
/// waited on), at most `MAX_SOURCE` bytes.
fn read_source(p: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let bad = |why: String| {
        Error::new(
            Code::Manifest,
            format!("configure: cannot read {}: {why}", p.display()),
        )
    };
    let f = crate::download::open_nofollow(p).map_err(|e| bad(e.to_string()))?;
    let st = crate::sys::dirfd::fstat(&f).map_err(|e| bad(e.to_string()))?;
    if st.kind != crate::sys::dirfd::Kind::File {
        return Err(bad("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    f.take(MAX_SOURCE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > MAX_SOURCE {
        return Err(bad(format!(
            "larger than {MAX_SOURCE} bytes; ship it as an artifact instead"
        )));
    }
    Ok(bytes)
}

/// Note `dir`'s missing parents in the state (before they are made), so
/// an uninstall removes them when they are empty again; then make it.
fn make_noted(ctx: &mut Ctx, dir: &std::path::Path) -> Result<()> {
    let new: Vec<String> = fsutil::missing_dirs(dir)
        .iter()
        .map(|d| d.display().to_string())
        .filter(|d| !ctx.st.created.contains(d))
        .collect();
    if !new.is_empty() {
        ctx.st.created.extend(new);
        ctx.save()?;
    }
    fsutil::mkdirs(dir)
}

/// Link the manifest's `expose` commands into the bin dir and, with
/// `--modify-path`, put it on PATH in the shell profiles (see `expose`);
/// say how to reach each command that this PATH does not find. Returns the
/// names linked.
fn expose(ctx: &mut Ctx) -> Result<Vec<String>> {
    use crate::expose as ex;
    let list = ctx.man.m.expose.clone();
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let bin = ex::bin_dir()?;
    make_noted(ctx, &bin)?;
    let mut linked = Vec::new();
    let mut unreached = Vec::new();
    for rel in &list {
        let name = crate::manifest::name_of(rel).to_string();
        let target = ctx.prefix.join(rel);
        if !target.is_file() {
            ctx.rep.info(&format!(
                "{name}: not linked, {} is not installed",
                target.display()
            ));
            continue;
        }
        let rec = crate::state::Link {
            path: bin.join(&name).display().to_string(),
            target: target.display().to_string(),
        };
        if !ctx.st.exposed.contains(&rec) {
            ctx.st.exposed.push(rec.clone());
            ctx.save()?;
        }
        if !ex::make_link(std::path::Path::new(&rec.path), &target)? {
            ctx.st.exposed.retain(|e| e != &rec);
            ctx.save()?;
            // Another install's link (this stack in another prefix) is
            // named as such: it is onramp's, just not this install's.
            let root = ctx.store.dir.parent().and_then(|d| d.parent());
            let other = root.and_then(|r| {
                crate::state::all(r).into_iter().find_map(|(_, st)| {
                    (st.prefix != ctx.st.prefix && st.exposed.iter().any(|l| l.path == rec.path))
                        .then(|| format!("{} {} in {}", st.stack, st.stack_version, st.prefix))
                })
            });
            match other {
                Some(who) => ctx.rep.warn(&format!(
                    "{name}: not linked, {} is the link of another install ({who}); run {} directly, or uninstall that one first",
                    rec.path,
                    target.display()
                )),
                None => ctx.rep.warn(&format!(
                    "{name}: not linked, {} exists and is not onramp's; run {} directly",
                    rec.path,
                    target.display()
                )),
            }
            continue;
        }
        match ex::resolve(&name) {
            Some(p)
                if fsutil::absolute(&p).ok()
                    == fsutil::absolute(std::path::Path::new(&rec.path)).ok() => {}
            Some(p) => ctx.rep.warn(&format!(
                "{name}: linked as {}, but {} comes first on your PATH",
                rec.path,
                p.display()
            )),
            None => unreached.push(name.clone()),
        }
        linked.push(name);
    }
    if ctx.modify_path
        && let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
    {
        let stack = ctx.man.m.name.clone();
        for file in ex::profiles(std::path::Path::new(&home), &stack) {
            let f = file.display().to_string();
            if !ctx.st.path_blocks.iter().any(|b| b.file == f) {
                let text = std::fs::read(&file).ok();
                let rec = crate::state::Block {
                    file: f,
                    created: text.is_none(),
                    added_newline: text
                        .as_ref()
                        .is_some_and(|t| !t.is_empty() && !t.ends_with(b"\n")),
                };
                if let Some(d) = file.parent() {
                    make_noted(ctx, d)?;
                }
                ctx.st.path_blocks.push(rec);
                ctx.save()?;
            }
            let Some(rec) = ctx
                .st
                .path_blocks
                .iter()
                .find(|b| b.file == file.display().to_string())
                .cloned()
            else {
                continue;
            };
            ex::add_block(&rec, &stack, &bin)?;
        }
    }
    if !unreached.is_empty() {
        if ctx.modify_path {
            ctx.rep.info(&format!(
                "{} is on PATH in your shell profiles from your next login shell (now: . ~/.profile)",
                bin.display()
            ));
        } else {
            ctx.rep.warn(&format!(
                "{} linked in {}, which is not on your PATH; add this line to your shell's profile (or install with --modify-path): export PATH=\"{}:$PATH\"",
                unreached.join(", "),
                bin.display(),
                bin.display()
            ));
        }
    }
    Ok(linked)
}

/// Start, restart or leave alone each service of an installed component;
/// wait until it is ready. Returns a word per service for the summary.
fn start_services(ctx: &mut Ctx) -> Result<Vec<String>> {
    let comps: Vec<crate::manifest::Component> = ctx
        .man
        .m
        .components
        .iter()
        .filter(|c| c.service.is_some())
        .cloned()
        .collect();
    let mut said = Vec::new();
    if comps.is_empty() {
        return Ok(said);
    }
    if ctx.no_start {
        for c in &comps {
            ctx.rep
                .info(&format!("service {}: not started (--no-start)", c.id));
        }
        return Ok(vec!["services not started (--no-start)".into()]);
    }
    let m = service::manager()?;
    let env = ctx.env();
    for c in comps {
        crate::signal::check()?;
        let Some(svc) = c.service.clone() else {
            continue;
        };
        let Some(step) = ctx.st.step(&c.id).cloned() else {
            continue;
        };
        if step.status != Status::Done {
            ctx.rep.info(&format!(
                "service {}: not started, {} is not installed",
                c.id, c.id
            ));
            continue;
        }
        // When it was installed, too: a component installed again (its
        // files were deleted) is restarted, not left running the old ones.
        let mut parts = vec![
            step.fingerprint.clone().unwrap_or_default(),
            step.artifact.clone().unwrap_or_default(),
            step.finished_at.clone().unwrap_or_default(),
        ];
        parts.extend(ctx.st.managed_files.iter().map(|(k, v)| format!("{k}={v}")));
        let fp = service::fingerprint(&svc, &parts);
        let old = ctx.st.services.get(&c.id).cloned();
        let port = service_port(&svc);
        if let Some(r) = &old
            && r.fingerprint == fp
            && r.manager == m.name()
            && serving(r, port).is_ok()
        {
            ctx.rep
                .info(&format!("service {}: running, unchanged", c.id));
            said.push(format!("{} running", c.id));
            ctx.announce_served()?;
            continue;
        }
        let verb = match &old {
            Some(r) if service::running(r) => {
                service::stop(r, Duration::from_secs(svc.stop_timeout_s.unwrap_or(10)))?;
                "restarted"
            }
            _ => "started",
        };
        if ctx.target.starts_with("windows-") {
            ctx.rep.info(&format!(
                "service {}: on Windows it runs as a process that onramp supervises, not as a Windows service: it does not start at boot (run the installer again after a reboot)",
                c.id
            ));
        }
        // A port someone else holds: ours would fail to listen, and the
        // ready check would be answered by theirs.
        if let Some(p) = port
            && let Some(who) = port_taken(p, svc.ready.as_ref().and_then(|r| r.http.as_deref()))
        {
            ctx.finish_step(
                &c.id,
                Status::Failed,
                Some(format!(
                    "its service cannot start: port {p} is already in use by {who}; stop that program or give this stack another port"
                )),
            )?;
            continue;
        }
        let started = Instant::now();
        let rec = service::start(
            &service::Start {
                stack: &ctx.man.m.name,
                id: &c.id,
                svc: &svc,
                prefix: &ctx.prefix,
                state_dir: &ctx.store.dir,
                env: &env,
                fingerprint: fp,
            },
            m,
        );
        let rec = match rec {
            // The directories made for its unit the first time stay noted.
            Ok(mut r) => {
                if r.created.is_empty()
                    && let Some(o) = &old
                {
                    r.created = o.created.clone();
                }
                r
            }
            Err(e) => {
                ctx.finish_step(&c.id, Status::Failed, Some(e.msg))?;
                continue;
            }
        };
        ctx.st.services.insert(c.id.clone(), rec.clone());
        ctx.save()?;
        match wait_ready(ctx, &c.id, &svc, &rec, port) {
            Ok(()) => {
                ctx.rep.info(&format!(
                    "service {}: {verb} ({}), ready in {:.1} s",
                    c.id,
                    rec.manager,
                    started.elapsed().as_secs_f64()
                ));
                said.push(format!("{} {verb}", c.id));
                ctx.announce_served()?;
            }
            Err(why) => {
                crate::signal::check()?;
                let _ = service::stop(&rec, Duration::from_secs(svc.stop_timeout_s.unwrap_or(10)));
                ctx.st.services.remove(&c.id);
                ctx.finish_step(
                    &c.id,
                    Status::Failed,
                    Some(format!("its service did not become ready: {why}")),
                )?;
            }
        }
    }
    Ok(said)
}

/// The TCP port a service listens on: its ready check's URL's.
pub(super) fn service_port(svc: &crate::manifest::Service) -> Option<u16> {
    let url = svc.ready.as_ref()?.http.as_deref()?;
    crate::manifest::loopback_http(url).ok().map(|l| l.port)
}

/// Who holds `port` before the service starts, when someone does. Where
/// the OS does not say (macOS, Windows), whether the ready URL's address
/// accepts a connection.
fn port_taken(port: u16, url: Option<&str>) -> Option<String> {
    match service::port_holder(port, None) {
        service::Holder::Free => None,
        service::Holder::Theirs(who) => Some(who),
        service::Holder::Ours | service::Holder::Unknown => {
            let l = crate::manifest::loopback_http(url?).ok()?;
            l.addrs
                .iter()
                .filter(|ip| ip.is_loopback())
                .any(|ip| {
                    std::net::TcpStream::connect_timeout(
                        &std::net::SocketAddr::new(*ip, port),
                        Duration::from_secs(2),
                    )
                    .is_ok()
                })
                .then(|| "another program".to_string())
        }
    }
}

/// Whether the service is up and, where its port is known, is the one
/// listening on it: its supervisor (or unit) runs, and the socket belongs
/// to its process or one it started. Err says what is wrong in a few
/// words (see `logged`); one that starts with "port" is another program
/// holding the port.
pub(super) fn serving(
    rec: &crate::state::Record,
    port: Option<u16>,
) -> std::result::Result<(), String> {
    if !service::running(rec) {
        return Err("it stopped".into());
    }
    let Some(port) = port else {
        return Ok(());
    };
    let Some(root) = service::root_pid(rec) else {
        return Ok(());
    };
    match service::port_holder(port, Some(root)) {
        service::Holder::Ours | service::Holder::Unknown => Ok(()),
        service::Holder::Free => Err(format!("nothing listens on port {port}")),
        service::Holder::Theirs(who) => {
            Err(format!("port {port} is held by {who}, not by this service"))
        }
    }
}

/// `why`, then the last lines of the service's log.
pub(super) fn logged(ctx: &Ctx, id: &str, why: &str) -> String {
    let log = service::paths(&ctx.store.dir, id).1;
    format!(
        "{why}; its log ({}): {}",
        log.display(),
        service::log_tail(&log)
    )
}

/// Poll the service's ready check every half second until it passes and
/// the service is the one listening, the service exits, another program
/// turns out to hold its port, or its time is up.
fn wait_ready(
    ctx: &Ctx,
    id: &str,
    svc: &crate::manifest::Service,
    rec: &crate::state::Record,
    port: Option<u16>,
) -> std::result::Result<(), String> {
    let ready = svc.ready.clone();
    let limit = Duration::from_secs(ready.as_ref().and_then(|r| r.timeout_s).unwrap_or(60));
    let deadline = Instant::now() + limit;
    let env = ctx.env();
    loop {
        if crate::signal::interrupted() {
            return Err("interrupted".into());
        }
        // The supervisor (or unit) must still be up, and for the pid-file
        // manager, its command too: the log says if it keeps exiting.
        if !service::running(rec) {
            return Err(logged(ctx, id, "it stopped"));
        }
        let res = match &ready {
            None => Ok(()),
            Some(r) => match (&r.http, &r.command) {
                (Some(u), _) => super::validate::http_ok(u, Duration::from_secs(5)),
                (None, Some(cmd)) => {
                    crate::run::check(cmd, &ctx.prefix, &env, Duration::from_secs(10), false)
                }
                (None, None) => Ok(()),
            },
        };
        let last = match res.and_then(|()| serving(rec, port)) {
            Ok(()) => return Ok(()),
            Err(why) if why.starts_with("port ") => return Err(logged(ctx, id, &why)),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(logged(
                ctx,
                id,
                &format!("not ready after {} s (last: {last})", limit.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
