//! Our own HTTPS listener: it serves HTTPS, refuses plain HTTP, and reloads its certificate
//! (on SIGHUP and when the files change) without dropping connections; healthcheck speaks HTTPS.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use dispatchctl::tls::ClientTlsFiles;
use rcgen::ExtendedKeyUsagePurpose;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Ca;
use crate::helpers::{wait_for, Env, TestApp};

/// Opens a TLS connection trusting `ca`, returns it and the certificate the server showed.
async fn tls_connect(port: u16, ca: &Path) -> (tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Vec<u8>) {
    let config = dispatchctl::tls::client_config(&ClientTlsFiles {
        ca_file: Some(ca.to_path_buf()),
        ..Default::default()
    })
    .expect("client config");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let stream = connector.connect(name, tcp).await.expect("handshake");
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .expect("peer certificate");
    (stream, leaf)
}

/// One keep-alive GET /livez on an open connection; the status code.
async fn livez_on<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: &mut S) -> u16 {
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    // The body is a short JSON object: read until it is complete.
    while !got.ends_with(b"}") {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "connection closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line")
}

fn pem_der(path: &Path) -> Vec<u8> {
    dispatchctl::tls::load_certs(path).expect("cert")[0].as_ref().to_vec()
}

#[tokio::test]
async fn tls_listener_serves_https_refuses_plain_http_and_reloads_without_dropping_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("listener CA");
    let ca_file = ca.write(dir.path(), "ca");
    let (cert, key) = ca.issue(dir.path(), "first", &["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let live_cert = dir.path().join("tls.crt");
    let live_key = dir.path().join("tls.key");
    std::fs::copy(&cert, &live_cert).expect("copy");
    std::fs::copy(&key, &live_key).expect("copy");
    let env = Env::new()
        .set("TLS_CERT_FILE", live_cert.display().to_string())
        .set("TLS_KEY_FILE", live_key.display().to_string())
        // Long: the first reload must come from SIGHUP, not from the poll.
        .set("TLS_RELOAD_INTERVAL", "1h");
    let app = TestApp::spawn(env, true).await;
    let port = app.addr.port();

    // A good handshake, through a real HTTPS client.
    let https = reqwest::Client::builder()
        .use_preconfigured_tls(
            dispatchctl::tls::client_config(&ClientTlsFiles {
                ca_file: Some(ca_file.clone()),
                ..Default::default()
            })
            .expect("config"),
        )
        .build()
        .expect("client");
    let r = https
        .get(format!("https://localhost:{port}/livez"))
        .send()
        .await
        .expect("https request");
    assert_eq!(r.status(), StatusCode::OK);

    // Plain HTTP gets a plain answer that says what to do.
    let r = reqwest::get(format!("http://127.0.0.1:{port}/livez"))
        .await
        .expect("plain request answered");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("body").contains("use https://"));

    // An old connection, made before the rotation.
    let (mut old, shown) = tls_connect(port, &ca_file).await;
    assert_eq!(shown, pem_der(&cert));
    assert_eq!(livez_on(&mut old).await, 200);

    // Rotation by SIGHUP: new connections get the new certificate...
    let (second, second_key) = ca.issue(
        dir.path(),
        "second",
        &["localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    std::fs::copy(&second, &live_cert).expect("copy");
    std::fs::copy(&second_key, &live_key).expect("copy");
    // SAFETY: signalling our own process; the listener's handler was registered at start.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGHUP) }, 0);
    let want = pem_der(&second);
    assert!(
        wait_for(Duration::from_secs(10), || async {
            tls_connect(port, &ca_file).await.1 == want
        })
        .await,
        "new connections get the reloaded certificate"
    );
    // ...while the old one still works with its session.
    assert_eq!(livez_on(&mut old).await, 200);
    drop(old);
    app.stop().await;
}

#[tokio::test]
async fn tls_listener_reloads_when_the_files_change_and_healthcheck_speaks_https() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("listener CA");
    let ca_file = ca.write(dir.path(), "ca");
    let (cert, key) = ca.issue(dir.path(), "first", &["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let env = Env::new()
        .set("TLS_CERT_FILE", cert.display().to_string())
        .set("TLS_KEY_FILE", key.display().to_string())
        .set("TLS_RELOAD_INTERVAL", "100ms");
    let app = TestApp::spawn(env.clone(), true).await;
    let port = app.addr.port();

    // cert-manager's way: the files are replaced; no signal.
    let (second, second_key) = ca.issue(
        dir.path(),
        "second",
        &["localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    // A later modification time even on a coarse clock.
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::copy(&second_key, &key).expect("copy");
    std::fs::copy(&second, &cert).expect("copy");
    let want = pem_der(&second);
    assert!(
        wait_for(Duration::from_secs(10), || async {
            tls_connect(port, &ca_file).await.1 == want
        })
        .await,
        "the changed files are served"
    );

    // Awaited, not blocked on: the server runs on this test's runtime.
    let healthcheck = |args: &[&str], pin: bool| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatchctl"));
        c.arg("healthcheck")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(std::env::temp_dir());
        if pin {
            c.env("TLS_CERT_FILE", &cert)
                .env("TLS_KEY_FILE", &key)
                .env("API_PORT", port.to_string());
        }
        c.output()
    };
    let url = format!("https://localhost:{port}/livez");
    let ca_arg = ca_file.display().to_string();
    let out = healthcheck(&["--url", &url, "--ca-file", &ca_arg], false)
        .await
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Beside the server, with its settings: https and its own certificate, no flags.
    let out = healthcheck(&[], true).await.expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Without the CA: a clear refusal.
    let out = healthcheck(&["--url", &url], false).await.expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS: certificate not trusted (unknown CA)"), "{err}");
    app.stop().await;
}
