//! HTTP from the installer: the plan (with retries while the network comes
//! up), the final report, and the root filesystem image streamed into a
//! consumer while its sha256 is computed, resuming with `Range` (guarded by
//! `If-Range` on the ETag) after a dropped connection. Every request goes
//! through the agent of [`crate::https`]; a server whose key is not pinned
//! ([`KeyRefused`]) is never retried: it would present the same key again.

use crate::https::{self, KeyRefused};
use anyhow::{bail, Context, Result};
use metalboot_spec::InstallPlan;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::time::Duration;

/// Why an image transfer ended.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The bytes were received but their sha256 is not the plan's.
    #[error("image checksum mismatch: got sha256 {got}, plan says {want}")]
    Checksum {
        /// Computed.
        got: String,
        /// Expected.
        want: String,
    },
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// `e` as a fatal error when the server's key was refused.
fn refusal(e: &ureq::Error, what: &str) -> Option<anyhow::Error> {
    https::refused(e).map(|k: &KeyRefused| anyhow::Error::new(k.clone()).context(what.to_string()))
}

/// Fetches and validates the plan, retrying for up to `patience` (but not
/// after [`KeyRefused`]).
pub fn fetch_plan(http: &ureq::Agent, base: &str, host: &str, token: &str, patience: Duration) -> Result<InstallPlan> {
    let url = format!("{base}/v1/hosts/{host}/plan?token={token}");
    let shown = format!("{base}/v1/hosts/{host}/plan");
    let start = std::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let got = http.get(&url).call();
        if let Err(e) = &got {
            if let Some(fatal) = refusal(e, &format!("fetching plan from {shown}")) {
                return Err(fatal);
            }
        }
        match got {
            Ok(r) => {
                let plan: InstallPlan = r.into_json().with_context(|| format!("parsing plan from {shown}"))?;
                plan.validate().context("validating plan")?;
                return Ok(plan);
            }
            Err(ureq::Error::Status(403, _)) => {
                bail!("{shown}: the server refused the install token (host re-armed or disarmed?)")
            }
            Err(ureq::Error::Status(code, r)) if code < 500 => {
                bail!("{shown}: HTTP {code}: {}", r.into_string().unwrap_or_default().trim())
            }
            Err(e) if start.elapsed() < patience => {
                // the URL carries the token: never on the console
                let e = redact_token(&e.to_string().replace(&url, &shown));
                println!("metalboot: fetching plan: {e}; retrying in {:.1}s", delay.as_secs_f64());
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => bail!("fetching plan from {shown}: {}", redact_token(&e.to_string().replace(&url, &shown))),
        }
    }
}

/// POSTs JSON with a few retries.
pub fn post_json(http: &ureq::Agent, url: &str, token: &str, body: &impl serde::Serialize) -> Result<()> {
    let mut last = None;
    for i in 0..5 {
        match http.post(&format!("{url}?token={token}")).send_json(body) {
            Ok(_) => return Ok(()),
            Err(ureq::Error::Status(code, r)) => {
                bail!("{url}: HTTP {code}: {}", r.into_string().unwrap_or_default().trim())
            }
            Err(e) => {
                if let Some(fatal) = refusal(&e, &format!("posting to {url}")) {
                    return Err(fatal);
                }
                last = Some(e)
            }
        }
        std::thread::sleep(Duration::from_secs(1 << i));
    }
    let e = last.map(|e| e.to_string()).unwrap_or_default();
    // the URL carries the token: never in an error
    bail!("posting to {url}: {}", redact_token(&e.replace(&format!("{url}?token={token}"), url)))
}

/// `text` with the value of every `token=` hidden: an error that prints
/// the URL in another form (a port made explicit, the host lower-cased)
/// than the one replaced still shows no token.
pub fn redact_token(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("token=") {
        out.push_str(&rest[..i + "token=".len()]);
        rest = &rest[i + "token=".len()..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(rest.len());
        if end > 0 {
            out.push_str("<redacted>");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Streams `url` into `sink`, verifying `size` and `sha256`. `progress` gets
/// bytes so far. Resumes up to 10 times after a dropped connection. A
/// `file:///path` URL reads a file the installer carries (a standalone
/// reinstall brings the image inside its initramfs), with the same checks.
pub fn stream_image(
    http: &ureq::Agent,
    url: &str,
    size: u64,
    sha256: &str,
    sink: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, FetchError> {
    match url.strip_prefix("file://") {
        Some(path) => stream_file(path, size, sha256, sink, progress),
        None => stream_http(http, url, size, sha256, sink, progress),
    }
}

fn stream_file(
    path: &str,
    size: u64,
    sha256: &str,
    sink: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, FetchError> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening the carried image {path}"))?;
    let mut hasher = Sha256::new();
    let mut done: u64 = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("reading {path}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n]).context("writing image to the unpacker")?;
        done += n as u64;
        progress(done);
    }
    if done != size {
        return Err(anyhow::anyhow!("{path}: {done} bytes, the plan says {size}").into());
    }
    let got = hex::encode(hasher.finalize());
    if got != sha256 {
        return Err(FetchError::Checksum { got, want: sha256.to_string() });
    }
    Ok(done)
}

fn stream_http(
    http: &ureq::Agent,
    url: &str,
    size: u64,
    sha256: &str,
    sink: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, FetchError> {
    let mut hasher = Sha256::new();
    let mut done: u64 = 0;
    let mut etag: Option<String> = None;
    let mut resumes = 0;
    let mut buf = vec![0u8; 256 * 1024];
    while done < size {
        let mut req = http.get(url);
        if done > 0 {
            req = req.set("Range", &format!("bytes={done}-"));
            if let Some(e) = &etag {
                req = req.set("If-Range", e);
            }
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, _)) => return Err(anyhow::anyhow!("{url}: HTTP {code}").into()),
            Err(e) if https::refused(&e).is_some() => {
                return Err(refusal(&e, &format!("fetching {url}")).expect("refused").into())
            }
            Err(e) if resumes < 10 => {
                resumes += 1;
                println!("metalboot: image: {e}; resuming at {done} bytes");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            Err(e) => return Err(anyhow::Error::from(e).context(format!("fetching {url}")).into()),
        };
        if done > 0 && resp.status() != 206 {
            return Err(anyhow::anyhow!("{url}: server did not resume (HTTP {}); image changed?", resp.status()).into());
        }
        if etag.is_none() {
            etag = resp.header("ETag").map(str::to_string);
        }
        let mut body = resp.into_reader();
        loop {
            match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let n = n.min((size - done) as usize);
                    hasher.update(&buf[..n]);
                    sink.write_all(&buf[..n]).context("writing image to the unpacker")?;
                    done += n as u64;
                    progress(done);
                    if done >= size {
                        break;
                    }
                }
                Err(e) if resumes < 10 => {
                    resumes += 1;
                    println!("metalboot: image: connection dropped ({e}); resuming at {done} bytes");
                    break;
                }
                Err(e) => return Err(anyhow::Error::from(e).context("reading image").into()),
            }
        }
    }
    let got = hex::encode(hasher.finalize());
    if got != sha256 {
        return Err(FetchError::Checksum { got, want: sha256.to_string() });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::redact_token;

    #[test]
    fn token_values_are_hidden_wherever_they_appear() {
        assert_eq!(
            redact_token("http://10.0.0.1:80/v1/hosts/a/events?token=0a1b2c: Connection refused"),
            "http://10.0.0.1:80/v1/hosts/a/events?token=<redacted>: Connection refused"
        );
        assert_eq!(redact_token("a?x=1&token=abc&y=2 b?token="), "a?x=1&token=<redacted>&y=2 b?token=");
        assert_eq!(redact_token("no tokens here"), "no tokens here");
    }
}
