//! Resumable uploads with real processes: `nexus put` whose connection is cut mid-file
//! resumes where the node got to and the blob lands whole; upload sessions are checked
//! before any byte, bounded per client and in all, usable only by the client that opened
//! them, and refuse bytes at the wrong offset or beyond the declared size.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

/// A TCP proxy to a node's API that cuts the first `PATCH` after `cut` bytes of it (as a
/// dropped connection would) and passes everything else.
struct CuttingProxy {
    api: String,
    cut_done: Arc<AtomicBool>,
}

impl CuttingProxy {
    fn start(upstream: &str, cut: usize) -> CuttingProxy {
        let listener = TcpListener::bind(("127.0.0.1", free_port())).expect("proxy port");
        let api = format!("http://{}", listener.local_addr().expect("addr"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let cut_done = Arc::new(AtomicBool::new(false));
        let done = cut_done.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let done = done.clone();
                std::thread::spawn(move || relay(client, server, cut, &done));
            }
        });
        CuttingProxy { api, cut_done }
    }
}

/// Copies both ways between `client` and `server`; the first PATCH seen (over all
/// connections) is cut after `cut` bytes.
fn relay(mut client: TcpStream, mut server: TcpStream, cut: usize, done: &AtomicBool) {
    let (mut back_from, mut back_to) = (
        server.try_clone().expect("clone"),
        client.try_clone().expect("clone"),
    );
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 << 10];
    // Bytes of the PATCH being cut passed so far (a connection may carry other requests
    // first: the head of the PATCH starts a read).
    let mut cutting: Option<usize> = None;
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if cutting.is_none() && buf[..n].starts_with(b"PATCH") && !done.swap(true, Ordering::SeqCst)
        {
            cutting = Some(0);
        }
        let n = cutting.map_or(n, |sent| n.min(cut - sent));
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(sent) = cutting.as_mut() {
            *sent += n;
        }
        if cutting.is_some_and(|sent| sent >= cut) {
            // Give the node a moment to take in what arrived, then drop both sides.
            std::thread::sleep(Duration::from_millis(200));
            let _ = server.shutdown(Shutdown::Both);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

#[test]
fn a_put_whose_connection_breaks_resumes_where_it_stopped_and_lands_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = start_proposer(tmp.path(), &[tmp.path().join("n")], &[]);
    let data = bytes(6 << 20, 21);
    let file = write_file(tmp.path(), "six", &data);
    let proxy = CuttingProxy::start(&node.api, 2 << 20);
    let out = cli(&proxy.api, &["put", &file, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "the put failed: {stderr}");
    assert!(proxy.cut_done.load(Ordering::SeqCst), "the proxy never cut");
    let resumed_at: u64 = stderr
        .split("upload interrupted at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resumption reported: {stderr}"));
    // What arrived before the cut was kept: the resumed request sent only the rest.
    assert!(
        resumed_at > 1 << 20 && resumed_at < 2 << 20,
        "resumed at {resumed_at}"
    );
    let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).expect("receipt");
    let id = receipt["blob_id"].as_str().expect("blob id");
    assert_eq!(get_bytes(&node.api, id, tmp.path()), data);
    let status = node.status();
    assert_eq!(status["staged_bytes"], 0, "{status}");
    assert_eq!(status["used_bytes"], data.len() as u64, "{status}");
    let (_, metrics) = http_get(&node.api, "/metrics").expect("metrics");
    assert!(metrics.contains("nexus_upload_sessions 0"), "{metrics}");
}

/// `METHOD path` with `headers` and `body` from loopback address `from`.
fn request(from: [u8; 4], api: &str, line: &str, headers: &str, body: &[u8]) -> (u16, String) {
    let mut raw = format!(
        "{line} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    http_raw_from(from, api, &raw).expect("an answer")
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn upload_sessions_are_checked_bounded_and_private_to_their_client() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = start_proposer(tmp.path(), &[tmp.path().join("n")], &[]);
    let (me, other) = ([127, 0, 0, 3], [127, 0, 0, 4]);
    let api = node.api.as_str();

    // Checked before any byte, as a put is.
    let (code, body) = request(me, api, "POST /v1/uploads?size=10&policy=foo", "", b"");
    assert_eq!(code, 400, "{body}");
    let (code, body) = request(me, api, "POST /v1/uploads?size=10&epochs=0", "", b"");
    assert_eq!(code, 400, "{body}");

    // At most 128 per client (as many as its connections).
    let ids: Vec<String> = (0..128)
        .map(|_| {
            let (code, body) = request(me, api, "POST /v1/uploads?size=1000", "", b"");
            assert_eq!(code, 201, "{body}");
            json(&body)["upload"].as_str().expect("id").to_string()
        })
        .collect();
    let (code, body) = request(me, api, "POST /v1/uploads?size=1000", "", b"");
    assert_eq!(code, 429, "{body}");
    assert_eq!(json(&body)["kind"], "too_many_uploads");

    // Appends at the right offset only, never past the declared size.
    let path = format!("/v1/uploads/{}", ids[0]);
    let data = bytes(1000, 5);
    let (code, body) = request(
        me,
        api,
        &format!("PATCH {path}"),
        "upload-offset: 0\r\n",
        &data[..400],
    );
    assert_eq!(
        (code, json(&body)["offset"].as_u64()),
        (200, Some(400)),
        "{body}"
    );
    let (code, body) = request(
        me,
        api,
        &format!("PATCH {path}"),
        "upload-offset: 0\r\n",
        &data[..400],
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("offset 400"), "{body}");
    let too_much = bytes(700, 6);
    let (code, body) = request(
        me,
        api,
        &format!("PATCH {path}"),
        "upload-offset: 400\r\n",
        &too_much,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("more bytes than"), "{body}");
    let (code, body) = request(me, api, &format!("GET {path}"), "", b"");
    assert_eq!(
        (code, json(&body)["offset"].as_u64()),
        (200, Some(400)),
        "{body}"
    );

    // Another client can neither see, resume nor give it up.
    for line in [format!("GET {path}"), format!("DELETE {path}")] {
        let (code, body) = request(other, api, &line, "", b"");
        assert_eq!(code, 404, "{line}: {body}");
    }
    let (code, body) = request(
        other,
        api,
        &format!("PATCH {path}"),
        "upload-offset: 400\r\n",
        &data[400..],
    );
    assert_eq!(code, 404, "{body}");

    // The last byte finishes and registers it, as a put does.
    let (code, body) = request(
        me,
        api,
        &format!("PATCH {path}"),
        "upload-offset: 400\r\n",
        &data[400..],
    );
    assert_eq!(code, 201, "{body}");
    let id = json(&body)["blob_id"]
        .as_str()
        .expect("blob id")
        .to_string();
    assert_eq!(get_bytes(api, &id, tmp.path()), data);
    let (code, _) = request(me, api, &format!("GET {path}"), "", b"");
    assert_eq!(code, 404);

    // Given up: its bytes go and its place is free again.
    let other_path = format!("/v1/uploads/{}", ids[1]);
    let (code, _) = request(
        me,
        api,
        &format!("PATCH {other_path}"),
        "upload-offset: 0\r\n",
        &data[..300],
    );
    assert_eq!(code, 200);
    let (code, body) = request(me, api, &format!("DELETE {other_path}"), "", b"");
    assert_eq!(code, 204, "{body}");
    let (code, _) = request(me, api, &format!("GET {other_path}"), "", b"");
    assert_eq!(code, 404);
    let (code, body) = request(me, api, "POST /v1/uploads?size=1000", "", b"");
    assert_eq!(code, 201, "{body}");
    let status = node.status();
    assert_eq!(
        status["used_bytes"], 1000,
        "only the finished upload is stored: {status}"
    );

    // A client at its cap still gets its put through, in one plain request.
    let local = [127, 0, 0, 1];
    while request(local, api, "POST /v1/uploads?size=1000", "", b"").0 == 201 {}
    let file = write_file(tmp.path(), "capped", &bytes(3000, 9));
    let out = cli(api, &["put", &file, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("not resumable"), "{stderr}");
}
