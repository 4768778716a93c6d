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
        let mut last = String::new();
        let mut ok = false;
        for attempt in 1..=tries {
            match probe(ctx, h, timeout) {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(why) => last = why,
            }
            if attempt < tries {
                std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
            }
        }
        if ok {
            passed += 1;
            ctx.rep.info(&format!("check {}: ok", h.name));
        } else {
            failed += 1;
            let why = format!("health check {} failed after {tries} tries: {last}", h.name);
            ctx.finish_step(&h.component, Status::Failed, Some(why))?;
        }
    }
    Ok(format!("{passed} check(s) passed, {failed} failed"))
}

fn probe(ctx: &Ctx, h: &HealthCheck, timeout: Duration) -> std::result::Result<(), String> {
    if let Some(cmd) = &h.command {
        return match crate::run::run(cmd, &ctx.prefix, &ctx.env(), timeout, false) {
            Ok(o) if o.ok() => Ok(()),
            Ok(o) => Err(o.describe()),
            Err(e) => Err(e.msg),
        };
    }
    let url = h.http.as_deref().unwrap_or_default();
    http_get_status(url, timeout).and_then(|code| {
        if (200..300).contains(&code) {
            Ok(())
        } else {
            Err(format!("{url} answered HTTP {code}"))
        }
    })
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
