//! Sessions of the status page: the operator logs in with the API token
//! once; the browser then holds a random session id in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` when it came over HTTPS). Sessions
//! live in memory only (a restart logs everyone out), expire after
//! [`SESSION_TTL`], and are bounded in number. Each carries a token for its
//! forms, so a change needs both the cookie and the page.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions held; the oldest goes first.
const MAX_SESSIONS: usize = 256;
/// The cookie's name.
pub const COOKIE: &str = "metalboot_session";

struct Session {
    expires: Instant,
    /// The token the session's forms carry.
    form_token: String,
}

/// Most live-update streams open at once (each renders every host on a
/// change); more are refused until one closes.
pub const MAX_STREAMS: usize = 32;

/// The live sessions, by the sha256 of their id, and the open streams.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
    streams: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// One open live-update stream; the slot frees when it drops.
pub struct StreamSlot(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn random_hex() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

impl Sessions {
    /// A new session: its id (for the cookie).
    pub fn create(&self) -> String {
        let id = random_hex();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(key(&id), Session { expires: now + SESSION_TTL, form_token: random_hex() });
        id
    }

    /// The form token of a live session.
    pub fn form_token(&self, id: &str) -> Option<String> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key(id)).filter(|s| s.expires > Instant::now()).map(|s| s.form_token.clone())
    }

    /// A slot for a live-update stream, if fewer than [`MAX_STREAMS`] are open.
    pub fn stream_slot(&self) -> Option<StreamSlot> {
        use std::sync::atomic::Ordering;
        self.streams.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_STREAMS).then_some(n + 1)).ok()?;
        Some(StreamSlot(self.streams.clone()))
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(&key(id));
    }
}

/// The session id in a request's `Cookie` headers.
pub fn cookie_id(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('=').map(str::to_string))
}

/// The `Set-Cookie` value for session `id` (empty: log out).
pub fn set_cookie(id: &str, https: bool) -> String {
    let age = if id.is_empty() { 0 } else { SESSION_TTL.as_secs() };
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{}", if https { "; Secure" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_on_logout() {
        let s = Sessions::default();
        let id = s.create();
        let mut h = axum::http::HeaderMap::new();
        h.insert(axum::http::header::COOKIE, format!("theme=dark; {COOKIE}={id}").parse().unwrap());
        assert_eq!(cookie_id(&h).as_deref(), Some(id.as_str()));
        let form = s.form_token(&id).expect("live");
        assert_eq!(form.len(), 64);
        assert!(s.form_token("not-a-session").is_none());
        s.remove(&id);
        assert!(s.form_token(&id).is_none());
    }

    #[test]
    fn sessions_are_bounded_and_the_cookie_is_strict() {
        let s = Sessions::default();
        let first = s.create();
        for _ in 0..MAX_SESSIONS {
            s.create();
        }
        assert!(s.form_token(&first).is_none(), "the oldest went first");
        assert_eq!(s.map.lock().unwrap().len(), MAX_SESSIONS);
        let c = set_cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("; Secure"), "{c}");
        assert!(set_cookie("", false).contains("Max-Age=0"));
        let slots: Vec<_> = (0..MAX_STREAMS).map(|_| s.stream_slot().expect("a slot")).collect();
        assert!(s.stream_slot().is_none(), "all slots taken");
        drop(slots);
        assert!(s.stream_slot().is_some());
    }
}
