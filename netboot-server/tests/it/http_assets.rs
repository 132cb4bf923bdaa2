//! Asset serving: whitelist, Range, HEAD, ETag, sha256 sidecar.

use crate::common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestServer;
use sha2::Digest;

fn get(uri: &str) -> axum::http::request::Builder {
    Request::get(uri)
}

#[tokio::test]
async fn full_get_has_length_etag_and_checksum() {
    let s = TestServer::new();
    let (st, h, body) = s.send(get("/assets/rootfs.tar.zst").body(Body::empty()).unwrap()).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, s.rootfs);
    assert_eq!(h["content-length"], s.rootfs.len().to_string().as_str());
    assert_eq!(h["accept-ranges"], "bytes");
    let sha = hex::encode(sha2::Sha256::digest(&s.rootfs));
    assert_eq!(h["etag"], format!("\"{sha}\"").as_str());
    let (st, sidecar) = s.get("/assets/rootfs.tar.zst.sha256").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(sidecar, format!("{sha}  rootfs.tar.zst\n"));
}

#[tokio::test]
async fn range_requests_return_exactly_the_bytes_asked_for() {
    let s = TestServer::new();
    let n = s.rootfs.len();
    for (range, start, end) in [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=299990-", 299_990, n - 1),
        ("bytes=-10", n - 10, n - 1),
        ("bytes=299999-400000", 299_999, n - 1),
    ] {
        let req = get("/assets/rootfs.tar.zst").header("range", range).body(Body::empty()).unwrap();
        let (st, h, body) = s.send(req).await;
        assert_eq!(st, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(body, &s.rootfs[start..=end], "{range}");
        assert_eq!(h["content-range"], format!("bytes {start}-{end}/{n}").as_str());
        assert_eq!(h["content-length"], (end - start + 1).to_string().as_str());
    }
    let req = get("/assets/rootfs.tar.zst").header("range", format!("bytes={n}-")).body(Body::empty()).unwrap();
    let (st, h, _) = s.send(req).await;
    assert_eq!(st, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h["content-range"], format!("bytes */{n}").as_str());
}

#[tokio::test]
async fn if_range_with_stale_etag_sends_the_whole_file() {
    let s = TestServer::new();
    let req = get("/assets/rootfs.tar.zst")
        .header("range", "bytes=0-9")
        .header("if-range", "\"old\"")
        .body(Body::empty())
        .unwrap();
    let (st, _, body) = s.send(req).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body.len(), s.rootfs.len());
}

#[tokio::test]
async fn head_and_conditional_get() {
    let s = TestServer::new();
    let (st, h, body) = s.send(Request::head("/assets/vmlinuz").body(Body::empty()).unwrap()).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(h["content-length"], "18");
    let etag = h["etag"].to_str().unwrap().to_string();
    let (st, _, body) =
        s.send(get("/assets/vmlinuz").header("if-none-match", &etag).body(Body::empty()).unwrap()).await;
    assert_eq!(st, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
}

#[tokio::test]
async fn changed_file_gets_a_new_checksum() {
    let s = TestServer::new();
    let before = s.get("/assets/vmlinuz.sha256").await.1;
    std::fs::write(s.dir.path().join("assets/vmlinuz"), b"a different, longer kernel").unwrap();
    let after = s.get("/assets/vmlinuz.sha256").await.1;
    assert_ne!(before, after);
    assert_eq!(s.get("/assets/vmlinuz").await.1, "a different, longer kernel");
}

#[tokio::test]
async fn only_whitelisted_existing_files_are_served() {
    let s = TestServer::new();
    std::fs::write(s.dir.path().join("assets/secret"), b"x").unwrap();
    for uri in [
        "/assets/secret",
        "/assets/..%2Fstate.db",
        "/assets/%2E%2E%2Fapi-token",
        "/assets/di-linux",
        "/assets/state.db",
        "/assets/..",
    ] {
        let (st, body) = s.get(uri).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{uri}: {body}");
    }
    assert_eq!(s.get("/assets/../state.db").await.0, StatusCode::NOT_FOUND);
}
