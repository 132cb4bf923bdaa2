//! `GET /ui/events`: the status page's live updates as server-sent events.
//! On every committed change of the store (debounced) and every few
//! seconds, the hosts are rendered again and the sections that changed are
//! sent (`host`, `summary`); a change in the set of hosts (a reload) asks
//! the page to reload. The stream ends when the session does.

use super::super::{blocking, AppError, Shared};
use super::{view, viewer, Viewer};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

/// Changes closer together than this are sent as one.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// Rendered again at least this often (times shown move on).
const TICK: Duration = Duration::from_secs(5);

struct Feed {
    _slot: super::session::StreamSlot,
    st: Shared,
    session: Option<String>,
    form_token: String,
    changes: tokio::sync::watch::Receiver<u64>,
    sent: HashMap<String, String>,
    summary: String,
    names: Option<Vec<String>>,
    queue: VecDeque<Event>,
    first: bool,
}

/// What one render pass produced: host names, sections, summary.
type Pass = (Vec<String>, Vec<(String, String)>, String);

fn render_all(st: &Shared, form_token: &str) -> anyhow::Result<Pass> {
    let inv = st.inventory.load();
    let hosts = inv.hosts().iter().map(|h| view::host(h, &st.store)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut sections = Vec::new();
    for h in &hosts {
        sections.push((h.name.clone(), view::render_host(&st.renderer, h, form_token)?));
    }
    let summary = view::render_summary(&st.renderer, &hosts)?;
    Ok((hosts.iter().map(|h| h.name.clone()).collect(), sections, summary))
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Feed)> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some((Ok(ev), self));
            }
            if !self.first {
                tokio::select! {
                    r = self.changes.changed() => {
                        if r.is_err() {
                            tokio::time::sleep(TICK).await;
                        }
                        tokio::time::sleep(DEBOUNCE).await;
                    }
                    () = tokio::time::sleep(TICK) => {}
                }
            }
            self.first = false;
            self.changes.mark_unchanged();
            if let Some(id) = &self.session {
                self.st.sessions.form_token(id)?;
            }
            let (st, token) = (self.st.clone(), self.form_token.clone());
            let (names, sections, summary) = match blocking(move || render_all(&st, &token)).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "status page: rendering a live update");
                    continue;
                }
            };
            if self.names.as_ref().is_some_and(|n| *n != names) {
                self.queue.push_back(Event::default().event("reload").data("hosts changed"));
            }
            self.names = Some(names);
            for (name, html) in sections {
                if self.sent.get(&name) != Some(&html) {
                    self.queue.push_back(Event::default().event("host").data(html.trim_end()));
                    self.sent.insert(name, html);
                }
            }
            if summary != self.summary {
                self.queue.push_back(Event::default().event("summary").data(summary.trim_end()));
                self.summary = summary;
            }
        }
    }
}

/// `GET /ui/events`
pub(super) async fn events(
    State(st): State<Shared>,
    headers: HeaderMap,
) -> Result<impl axum::response::IntoResponse, AppError> {
    let v = viewer(&st, &headers).ok_or(AppError::Unauthorized)?;
    let (session, form_token) = match v {
        Viewer::Session { id, form_token } => (Some(id), form_token),
        Viewer::Bearer => (None, String::new()),
    };
    let slot = st.sessions.stream_slot().ok_or_else(|| {
        AppError::BadRequest(format!(
            "{} live-update streams are open already; close a page",
            super::session::MAX_STREAMS
        ))
    })?;
    let feed = Feed {
        _slot: slot,
        changes: st.store.subscribe(),
        st,
        session,
        form_token,
        sent: HashMap::new(),
        summary: String::new(),
        names: None,
        queue: VecDeque::new(),
        first: true,
    };
    let stream = futures_util::stream::unfold(feed, Feed::next);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
