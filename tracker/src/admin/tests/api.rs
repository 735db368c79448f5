//! The REST admin API, in process (`tower::ServiceExt::oneshot`), on both backends.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tower::ServiceExt;

use super::super::api::{MAX_BODY, router};
use super::super::{StatsView, TorrentView, UserView};
use crate::db::Db;
use crate::db::testing::{TestDb, on_both};
use crate::private::{Batch, Credit, Delta, TorrentId};

const TOKEN: &str = "correct horse battery staple";

struct Api {
    app: Router,
    notify: Arc<Notify>,
    db: Db,
}

impl Api {
    async fn new(t: &TestDb) -> Api {
        let db = t.open().await;
        let notify = Arc::new(Notify::new());
        Api {
            app: router(db.clone(), TOKEN.to_owned(), Arc::clone(&notify)),
            notify,
            db,
        }
    }

    /// Sends a request with `authorization` as the header (if any); returns the status and
    /// the JSON body.
    async fn send(
        &self,
        method: Method,
        uri: &str,
        authorization: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{uri}: {}",
            String::from_utf8_lossy(&bytes)
        );
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn call(&self, method: Method, uri: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        let bearer = format!("Bearer {TOKEN}");
        self.send(method, uri, Some(&bearer), body).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, Body::empty()).await
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, body.to_string()).await
    }

    /// Whether `on_change` was notified since the last call (consumes the permit).
    async fn changed(&self) -> bool {
        tokio::select! {
            biased;
            () = self.notify.notified() => true,
            () = std::future::ready(()) => false,
        }
    }
}

fn error(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
}

async fn requests_without_the_right_token_are_refused(t: &TestDb) {
    let api = Api::new(t).await;
    let new_user = json!({"name": "alice"}).to_string();
    for authorization in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some("Bearer wrong"),
        Some("Bearer correct horse battery stapl"),
        Some("Bearer correct horse battery staple!"),
        Some("Basic correct horse battery staple"),
        Some(TOKEN),
    ] {
        for (method, uri) in [
            (Method::POST, "/users"),
            (Method::GET, "/users"),
            (Method::GET, "/stats"),
            (Method::DELETE, "/torrents/00"),
            (Method::GET, "/no/such/route"),
        ] {
            let (status, body) = api.send(method, uri, authorization, new_user.clone()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?} {uri}");
            assert_eq!(error(&body), "missing or wrong admin token");
        }
    }
    assert!(api.db.list_users().await.unwrap().is_empty());
    assert!(!api.changed().await);
    // The scheme is case-insensitive.
    let (status, _) = api
        .send(
            Method::GET,
            "/users",
            Some(&format!("bearer {TOKEN}")),
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // An empty configured token matches nothing, not even an empty one.
    let open = router(api.db.clone(), String::new(), Arc::new(Notify::new()));
    for authorization in ["Bearer ", "Bearer", ""] {
        let request = Request::get("/users")
            .header(header::AUTHORIZATION, authorization)
            .body(Body::empty())
            .unwrap();
        let response = open.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}

async fn user_routes(t: &TestDb) {
    let api = Api::new(t).await;
    let (status, body) = api.post("/users", json!({"name": "alice"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let alice: UserView = serde_json::from_value(body).unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.passkey.len(), 32);
    assert_eq!(alice.announce_url, None);
    assert!(api.changed().await);
    assert!(!api.changed().await);

    let (status, body) = api.post("/users", json!({"name": "alice"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error(&body), "user alice already exists");
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(65)}),
        json!({"name": "a\u{7}b"}),
        json!({"name": 5}),
        json!({}),
        json!({"name": "bob", "admin": true}),
        json!(["bob"]),
    ] {
        let (status, body) = api.post("/users", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        error(&body);
    }
    let (status, body) = api.call(Method::POST, "/users", "{\"name\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).starts_with("invalid JSON body"), "{body}");
    let huge = json!({ "name": "x".repeat(MAX_BODY) }).to_string();
    let (status, body) = api.call(Method::POST, "/users", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error(&body), format!("request body over {MAX_BODY} bytes"));
    assert!(!api.changed().await);

    let evil = "'; DROP TABLE users; --";
    let (status, _) = api.post("/users", json!({ "name": evil })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(api.changed().await);
    let (status, body) = api
        .get("/users/%27%3B%20DROP%20TABLE%20users%3B%20--")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], evil);

    let (status, body) = api.get("/users").await;
    assert_eq!(status, StatusCode::OK);
    let users: Vec<UserView> = serde_json::from_value(body).unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0], alice);
    let (status, body) = api.get("/users/alice").await;
    assert_eq!(
        (status, serde_json::from_value(body).ok()),
        (StatusCode::OK, Some(alice.clone()))
    );
    let (status, body) = api.get("/users/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "no user named nobody");

    let (status, body) = api
        .post("/users/alice/disable", json!({"reason": "ratio"}))
        .await;
    assert_eq!(
        (status, body["disabled"].as_str()),
        (StatusCode::OK, Some("ratio"))
    );
    assert!(api.changed().await);
    let (status, body) = api
        .call(Method::POST, "/users/alice/disable", Body::empty())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["disabled"], super::super::DEFAULT_DISABLE_REASON);
    let (status, _) = api
        .post("/users/alice/disable", json!({"reason": "x".repeat(201)}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.post("/users/nobody/disable", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(api.changed().await);
    assert!(!api.changed().await);
    assert_eq!(
        api.db.user("alice").await.unwrap().disabled.as_deref(),
        Some(super::super::DEFAULT_DISABLE_REASON)
    );

    let (status, body) = api
        .call(Method::POST, "/users/alice/enable", Body::empty())
        .await;
    assert_eq!((status, &body["disabled"]), (StatusCode::OK, &Value::Null));
    assert!(api.changed().await);
    let (status, _) = api
        .call(Method::POST, "/users/nobody/enable", Body::empty())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = api
        .call(Method::POST, "/users/alice/passkey", Body::empty())
        .await;
    assert_eq!(status, StatusCode::OK);
    let renewed: UserView = serde_json::from_value(body).unwrap();
    assert_ne!(renewed.passkey, alice.passkey);
    assert_eq!(
        api.db.user("alice").await.unwrap().passkey.as_str(),
        renewed.passkey
    );
    assert!(api.changed().await);
    let (status, _) = api
        .call(Method::POST, "/users/nobody/passkey", Body::empty())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!api.changed().await);

    // Wrong methods and unknown routes answer JSON too, or at least never change anything.
    let (status, body) = api.get("/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "no such admin route");
    assert!(!api.changed().await);
}

async fn torrent_and_stats_routes(t: &TestDb) {
    let api = Api::new(t).await;
    let hex = "0123456789abcdef0123456789abcdef01234567";
    let (status, body) = api
        .post(
            "/torrents",
            json!({"info_hash": hex, "freeleech": true, "upload_multiplier_percent": 200}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let torrent: TorrentView = serde_json::from_value(body).unwrap();
    assert_eq!(
        (
            torrent.info_hash.as_str(),
            torrent.freeleech,
            torrent.upload_multiplier_percent
        ),
        (hex, true, 200)
    );
    assert!(api.changed().await);
    let (status, _) = api.post("/torrents", json!({"info_hash": hex})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    for bad in [
        json!({"info_hash": "'; DROP TABLE torrents; --"}),
        json!({"info_hash": "zz23456789abcdef0123456789abcdef01234567"}),
        json!({"info_hash": &hex[..38]}),
        json!({"info_hash": "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"}),
        json!({"info_hash": hex, "upload_multiplier_percent": 10_001}),
        json!({"info_hash": hex, "upload_multiplier_percent": -1}),
        json!({"info_hash": hex, "freeleech": "yes"}),
        json!({"freeleech": true}),
    ] {
        let (status, body) = api.post("/torrents", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    assert!(!api.changed().await);
    let other = "ffffffffffffffffffffffffffffffffffffffff";
    let (status, body) = api.post("/torrents", json!({ "info_hash": other })).await;
    assert_eq!(
        (status, &body["upload_multiplier_percent"]),
        (StatusCode::CREATED, &json!(100))
    );
    assert!(api.changed().await);

    let (status, body) = api.get("/torrents").await;
    assert_eq!(status, StatusCode::OK);
    let all: Vec<TorrentView> = serde_json::from_value(body).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], torrent);

    let (status, body) = api
        .call(Method::DELETE, &format!("/torrents/{hex}"), Body::empty())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], torrent.id);
    assert!(api.changed().await);
    let (status, body) = api
        .call(Method::DELETE, &format!("/torrents/{hex}"), Body::empty())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error(&body).contains("is not registered"));
    let (status, _) = api
        .call(Method::DELETE, "/torrents/xyz", Body::empty())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!api.changed().await);
    assert_eq!(api.db.list_torrents().await.unwrap().len(), 1);

    let alice = api
        .db
        .add_user("alice", &super::new_passkey())
        .await
        .unwrap();
    api.db
        .apply(&Batch {
            credits: vec![Credit {
                user: alice.id,
                torrent: TorrentId(2),
                delta: Delta {
                    uploaded: 5,
                    downloaded: 6,
                    snatches: 1,
                    seeding_secs: 8,
                },
                seeded_until: 0,
            }],
            peers: vec![],
        })
        .await
        .unwrap();
    let want = StatsView {
        name: "alice".into(),
        uploaded: 5,
        downloaded: 6,
        snatches: 1,
        seeding_secs: 8,
    };
    let (status, body) = api.get("/stats/alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_value::<StatsView>(body).unwrap(), want);
    let (status, body) = api.get("/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_value::<Vec<StatsView>>(body).unwrap(),
        vec![want]
    );
    let (status, _) = api.get("/stats/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!api.changed().await);
}

on_both!(
    requests_without_the_right_token_are_refused,
    user_routes,
    torrent_and_stats_routes,
);
