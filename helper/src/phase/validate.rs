//! Validate: run each health check with bounded retries and timeouts; a
//! failing check marks the component it vouches for as failed, by name.

use super::Ctx;
use crate::error::Result;
use crate::manifest::HealthCheck;
use crate::state::Status;
use std::io::{Read, Write};
use std::time::Duration;

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let checks = ctx.man.m.health_checks.clone();
    let mut passed = 0;
    let mut failed = 0;
    for h in &checks {
        crate::signal::check()?;
        if ctx.no_start
            && ctx
                .man
                .component(&h.component)
                .is_some_and(|c| c.service.is_some())
        {
            ctx.rep.info(&format!(
                "check {}: skipped, the service of {} was not started (--no-start)",
                h.name, h.component
            ));
            continue;
        }
        if ctx
            .st
            .step(&h.component)
            .is_none_or(|s| s.status != Status::Done)
        {
            ctx.rep.info(&format!(
                "check {}: skipped, {} is not installed",
                h.name, h.component
            ));
            continue;
        }
        let tries = h.retries.unwrap_or(3).max(1);
        let timeout = Duration::from_secs(h.timeout_s.unwrap_or(10));
        let res = retry(tries, || probe(ctx, h, timeout));
        if let Err(last) = res {
            failed += 1;
            let why = format!("health check {} failed after {tries} tries: {last}", h.name);
            ctx.finish_step(&h.component, Status::Failed, Some(why))?;
        } else {
            passed += 1;
            ctx.rep.info(&format!("check {}: ok", h.name));
        }
    }
    failed += still_serving(ctx)?;
    Ok(format!("{passed} check(s) passed, {failed} failed"))
}

/// After the checks, each service that configure saw ready must still be
/// running and the one on its port: a server that crashed (or lost its
/// port) while the checks ran fails its component. Returns how many did.
fn still_serving(ctx: &mut Ctx) -> Result<usize> {
    if ctx.no_start {
        return Ok(0);
    }
    let mut lost = 0;
    for c in ctx.man.m.components.clone() {
        let (Some(svc), Some(rec)) = (&c.service, ctx.st.services.get(&c.id).cloned()) else {
            continue;
        };
        if ctx.st.step(&c.id).is_none_or(|s| s.status != Status::Done) {
            continue;
        }
        let port = super::configure::service_port(svc);
        if let Err(why) = super::configure::serving(&rec, port) {
            lost += 1;
            let why = super::configure::logged(ctx, &c.id, &why);
            ctx.finish_step(
                &c.id,
                Status::Failed,
                Some(format!(
                    "its service was ready, but not after the health checks: {why}"
                )),
            )?;
        }
    }
    Ok(lost)
}

/// Try `f` up to `tries` times, waiting 0.5 s, 1 s, 1.5 s, ... between
/// tries (a service still starting); the last failure when none passed.
pub(crate) fn retry(
    tries: u32,
    mut f: impl FnMut() -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let mut last = String::new();
    for attempt in 1..=tries.max(1) {
        if crate::signal::interrupted() {
            break;
        }
        match f() {
            Ok(()) => return Ok(()),
            Err(why) => last = why,
        }
        if attempt < tries {
            std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
        }
    }
    Err(last)
}

/// Ok when `url` (a loopback http URL) answers 2xx.
pub(super) fn http_ok(url: &str, timeout: Duration) -> std::result::Result<(), String> {
    http_get_status(url, timeout).and_then(|code| {
        if (200..300).contains(&code) {
            Ok(())
        } else {
            Err(format!("{url} answered HTTP {code}"))
        }
    })
}

fn probe(ctx: &Ctx, h: &HealthCheck, timeout: Duration) -> std::result::Result<(), String> {
    probe_in(h, &ctx.prefix, &ctx.env(), timeout)
}

/// Run one health check in `prefix` with `env` (also `doctor`'s).
pub(crate) fn probe_in(
    h: &HealthCheck,
    prefix: &std::path::Path,
    env: &[(String, String)],
    timeout: Duration,
) -> std::result::Result<(), String> {
    if let Some(cmd) = &h.command {
        return crate::run::check(cmd, prefix, env, timeout, false);
    }
    http_ok(h.http.as_deref().unwrap_or_default(), timeout)
}

/// A minimal GET on loopback, status code only. The URL was checked when
/// the manifest was read and is parsed again here: the only addresses ever
/// connected to are loopback ones, and no name is looked up (`localhost` is
/// 127.0.0.1, then ::1).
fn http_get_status(url: &str, timeout: Duration) -> std::result::Result<u16, String> {
    let l = crate::manifest::loopback_http(url).map_err(|e| format!("{url}: {e}"))?;
    let mut last = format!("{url}: no address");
    for ip in &l.addrs {
        if !ip.is_loopback() {
            continue;
        }
        let addr = std::net::SocketAddr::new(*ip, l.port);
        let mut s = match std::net::TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => s,
            Err(e) => {
                last = format!("{url}: {e}");
                continue;
            }
        };
        let _ = s.set_read_timeout(Some(timeout));
        let _ = s.set_write_timeout(Some(timeout));
        write!(
            s,
            "GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            l.path, l.host
        )
        .map_err(|e| format!("{url}: {e}"))?;
        let mut head = [0u8; 64];
        let n = s.read(&mut head).map_err(|e| format!("{url}: {e}"))?;
        let line = String::from_utf8_lossy(&head[..n]);
        return line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("{url}: not an HTTP answer"));
    }
    Err(last)
}
