//! What the v1 API refuses and how: the validation rules, malformed ids, bodies, pages and
//! batches, and the JSON every error (and a request that runs out of time) gets.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{answer_of, sms, stored_rows};
use crate::helpers::{Env, TestApp};

#[tokio::test]
async fn validation_rules_of_the_contract() {
    let t = TestApp::spawn(Env::new(), true).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"priority": "NORMAL", "recipient": "x", "content": "y"}),
            "channel",
        ),
        (
            json!({"channel": "fax", "priority": "NORMAL", "recipient": "x", "content": "y"}),
            "SMS, EMAIL, PUSH",
        ),
        (
            json!({"channel": "SMS", "priority": "urgent", "recipient": "x", "content": "y"}),
            "HIGH, NORMAL, LOW",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "   ", "content": "y"}),
            "recipient",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "x", "content": "  "}),
            "content",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "x", "content": "a".repeat(161)}),
            "at most 160",
        ),
        (
            json!({"channel": "PUSH", "priority": "LOW", "recipient": "x", "content": "a".repeat(241)}),
            "at most 240",
        ),
        (
            json!({"channel": "EMAIL", "priority": "LOW", "recipient": "x", "content": "a".repeat(10_001)}),
            "at most 10000",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "x", "content": "y", "scheduledAt": "soon"}),
            "scheduledAt",
        ),
        (
            json!({"channel": 5, "priority": "LOW", "recipient": "x", "content": "y"}),
            "channel",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "x", "content": "y", "maxRetries": "three"}),
            "maxRetries",
        ),
        (json!([1, 2]), "invalid JSON body"),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "a\u{0}b", "content": "y"}),
            "recipient",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "x", "content": "y\u{0}"}),
            "NUL",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = t.post("/v1/notifications", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{body}: error {message:?} should mention {expected:?}"
        );
    }
    // Characters, not bytes: 160 two-byte characters are a valid SMS.
    t.create("SMS", "x", &"ş".repeat(160)).await;
    t.create("sms", "x", &"ş".repeat(160)).await;
    // maxRetries <= 0 means the default.
    let (_, n) = t
        .post(
            "/v1/notifications",
            &json!({"channel": "Sms", "priority": "Low", "recipient": "x", "content": "y", "maxRetries": 0}),
        )
        .await;
    assert_eq!(n["maxRetries"], 5);

    let raw = |body: &'static str, ct: &'static str| {
        t.client
            .post(t.url("/v1/notifications"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = raw("{not json", "application/json").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = raw("{}", "text/plain").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.text().await.unwrap().contains("application/json"));
    let big = format!("{{\"content\": \"{}\"}}", "a".repeat(70_000));
    let r = t
        .client
        .post(t.url("/v1/notifications"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());

    let (status, _) = t.get(&format!("/v1/notifications/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for (query, expected) in [
        ("page=0", "page"),
        ("pageSize=101", "pageSize"),
        ("pageSize=abc", "pageSize"),
        ("status=LOST", "status"),
        ("channel=fax", "channel"),
        ("from=yesterday", "from"),
        (
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from must not be later than to",
        ),
    ] {
        let (status, body) = t.get(&format!("/v1/notifications?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(body["error"].as_str().unwrap().contains(expected), "{query}: {body}");
    }
    let (status, body) = t.get("/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    let r = t.client.delete(t.url("/v1/notifications")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    t.take_left(&[("sms", 3)]).await;
    t.stop().await;
}

/// A POST of `body` as it is, with `content_type` unless None.
async fn post_raw(t: &TestApp, path: &str, body: &str, content_type: Option<&str>) -> (StatusCode, Value) {
    let mut request = t.client.post(t.url(path)).body(body.to_string());
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    crate::helpers::decode(request.send().await.unwrap()).await
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_not_found() {
    let t = TestApp::spawn(Env::new(), true).await;
    for ((status, body), what) in [
        (t.get("/v1/notifications/not-a-uuid").await, "notification"),
        (t.get("/v1/notifications/12345").await, "notification"),
        (
            t.post("/v1/notifications/not-a-uuid/cancel", &json!({})).await,
            "notification",
        ),
        (t.get("/v1/batches/nope").await, "batch"),
        (t.get("/v1/batches/%20%7B%7D").await, "batch"),
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{what} not found")) && message.contains("is not a valid UUID"),
            "{message}"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn trailing_bytes_after_the_json_body_are_refused() {
    let t = TestApp::spawn(Env::new(), true).await;
    let one = sms("x", "y").to_string();
    let batch = json!({"notifications": [sms("x", "y")]}).to_string();
    for (path, body) in [
        ("/v1/notifications", format!("{one}xyz")),
        ("/v1/notifications", format!("{one}{one}")),
        ("/v1/notifications", format!("{one}\n{one}")),
        ("/v1/notifications/batch", format!("{batch}xyz")),
        ("/v1/notifications/batch", format!("{batch} {batch}")),
    ] {
        let (status, answer) = post_raw(&t, path, &body, Some("application/json")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body} -> {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.contains("trailing characters at line") && message.contains("column"),
            "names the position: {message}"
        );
    }
    assert_eq!(stored_rows(&t).await, 0, "nothing was stored");
    // Trailing whitespace is not data.
    let (status, answer) = post_raw(
        &t,
        "/v1/notifications",
        &format!("{one} \r\n\t"),
        Some("application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn max_retries_above_the_limit_is_refused_not_capped() {
    let t = TestApp::spawn(Env::new(), true).await;
    let with_retries = |n: Value| {
        let mut body = sms("x", "y");
        body["maxRetries"] = n;
        body
    };
    for n in [json!(101), json!(2_147_483_648_i64), json!(i64::MAX)] {
        let (status, answer) = t.post("/v1/notifications", &with_retries(n.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n} -> {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.starts_with("maxRetries:") && message.contains("limit of 100"),
            "{message}"
        );
    }
    let (status, answer) = t
        .post(
            "/v1/notifications/batch",
            &json!({"notifications": [sms("a", "b"), with_retries(json!(1000))]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("notifications[1].maxRetries:"),
        "{answer}"
    );
    assert_eq!(stored_rows(&t).await, 0);
    let (status, answer) = t.post("/v1/notifications", &with_retries(json!(100))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["maxRetries"], 100, "the limit itself is kept as sent");
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn pages_past_int32_are_empty_pages_with_the_total() {
    let t = TestApp::spawn(Env::new(), true).await;
    t.create("sms", "x", "one").await;
    t.create("sms", "x", "two").await;
    for page in ["2147483648", "9223372036854775807"] {
        let (status, list) = t.get(&format!("/v1/notifications?page={page}&pageSize=100")).await;
        assert_eq!(status, StatusCode::OK, "page={page}: {list}");
        assert_eq!(list["data"], json!([]));
        assert_eq!(list["meta"]["total"], 2);
        assert_eq!(list["meta"]["page"].to_string(), page, "the page asked for is echoed");
    }
    let (status, body) = t.get("/v1/notifications?page=9223372036854775808").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("from 1 to 9223372036854775807"),
        "names the limit: {body}"
    );
    t.take_left(&[("sms", 2)]).await;
    t.stop().await;
}

#[tokio::test]
async fn a_key_repeated_inside_one_batch_rejects_the_batch_naming_both_items() {
    let t = TestApp::spawn(Env::new(), true).await;
    let keyed = |key: &str| {
        let mut body = sms("x", "y");
        body["idempotencyKey"] = json!(key);
        body
    };
    let (status, answer) = t
        .post(
            "/v1/notifications/batch",
            &json!({"notifications": [keyed("k-1"), keyed("k-2"), keyed(" k-1 ")]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(
        message.starts_with("notifications[2].idempotencyKey:") && message.contains("notifications[0]"),
        "{message}"
    );
    assert_eq!(stored_rows(&t).await, 0, "nothing was stored");

    // With distinct keys, the response and the summary count the same items.
    let (status, batch) = t
        .post(
            "/v1/notifications/batch",
            &json!({"notifications": [keyed("k-1"), keyed("k-2"), sms("x", "no key"), sms("x", "no key")]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    let (_, summary) = t
        .get(&format!("/v1/batches/{}", batch["batchId"].as_str().unwrap()))
        .await;
    let counted: i64 = summary["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(batch["totalCount"], 4);
    assert_eq!(summary["totalCount"], 4);
    assert_eq!(counted, 4, "{summary}");
    t.take_left(&[("sms", 4)]).await;
    t.stop().await;
}

#[tokio::test]
async fn a_missing_content_type_is_read_as_json_but_a_form_is_refused() {
    let t = TestApp::spawn(Env::new(), true).await;
    let one = sms("x", "y").to_string();
    let (status, answer) = post_raw(&t, "/v1/notifications", &one, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let batch = json!({"notifications": [sms("x", "y")]}).to_string();
    let (status, answer) = post_raw(&t, "/v1/notifications/batch", &batch, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let form = "channel=sms&priority=high&recipient=x&content=y";
    for (path, content_type) in [
        ("/v1/notifications", "application/x-www-form-urlencoded"),
        (
            "/v1/notifications/batch",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("/v1/notifications", "multipart/form-data; boundary=x"),
    ] {
        let (status, answer) = post_raw(&t, path, form, Some(content_type)).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path} {content_type}");
        assert!(
            answer["error"].as_str().unwrap().contains("send application/json"),
            "{answer}"
        );
    }
    assert_eq!(stored_rows(&t).await, 2, "only the two JSON bodies were stored");
    t.take_left(&[("sms", 2)]).await;
    t.stop().await;
}

#[tokio::test]
async fn every_error_is_json_with_a_stable_code() {
    let env = Env::new()
        .set("MAX_BODY_BYTES", "256")
        .set("CORS_ALLOWED_ORIGINS", "https://console.example.com");
    let t = TestApp::spawn(env, true).await;
    let c = &t.client;
    let big = sms("+905550000001", &"x".repeat(400));
    let cases = [
        (c.get(t.url("/v2/nothing")), 404, "not_found"),
        (c.get(t.url("/v1/notifications/not-a-uuid")), 404, "not_found"),
        (c.delete(t.url("/v1/notifications")), 405, "method_not_allowed"),
        (
            c.post(t.url("/v1/notifications")).json(&json!({"channel": "fax"})),
            400,
            "invalid_request",
        ),
        (c.post(t.url("/v1/notifications")).json(&big), 413, "payload_too_large"),
        (
            c.post(t.url("/v1/notifications"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("a=b"),
            415,
            "unsupported_media_type",
        ),
        (
            c.request(reqwest::Method::OPTIONS, t.url("/v1/notifications"))
                .header("origin", "https://evil.example.com")
                .header("access-control-request-method", "POST"),
            403,
            "cors_origin_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = answer_of(request).await;
        assert_eq!((got.as_u16(), body["code"].as_str()), (status, Some(code)), "{body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    }
    // The listed origin's preflight still passes.
    let r = c
        .request(reqwest::Method::OPTIONS, t.url("/v1/notifications"))
        .header("origin", "https://console.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://console.example.com"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_request_slower_than_request_timeout_gets_a_json_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestApp::spawn(Env::new().set("REQUEST_TIMEOUT", "300ms"), true).await;
    // A body that never finishes arriving: the handler waits for it until the time limit.
    let mut stream = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    stream
        .write_all(b"POST /v1/notifications HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"channel\"")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            raw.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&raw).contains("request_timeout") {
                break;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&raw);
    assert!(read.is_ok(), "no answer within 10 s: {text}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let body: Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(body["code"], "request_timeout");
    assert!(body["error"].as_str().unwrap().contains("300ms"), "{body}");
    t.stop().await;
}
