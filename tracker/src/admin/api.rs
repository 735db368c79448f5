//! The JSON REST admin API, for a site's web front end. The server mounts [`router`] under
//! `/admin` only when an admin token is configured.
//!
//! Every request needs `Authorization: Bearer <token>` (else 401, before anything is
//! parsed). The token is compared in constant time: both sides are hashed with SHA-256 and
//! the digests compared by folding the XOR of every byte, so neither a matching prefix nor
//! the token's length shows in the timing. An empty configured token matches nothing.
//!
//! Routes (JSON bodies, at most [`MAX_BODY`] bytes, else 413; unknown fields are refused):
//! - `GET /users`, `POST /users` `{"name"}` (201, the new user with its passkey),
//!   `GET /users/{name}`, `POST /users/{name}/disable` `{"reason"}` (body optional),
//!   `POST /users/{name}/enable`, `POST /users/{name}/passkey` (a new passkey);
//! - `GET /torrents`, `POST /torrents` `{"info_hash", "freeleech", "upload_multiplier_percent"}`
//!   (201), `DELETE /torrents/{info_hash}`;
//! - `GET /stats` (every user's totals), `GET /stats/{name}`.
//!
//! Errors are `{"error": "<message>"}` with 400 (bad input), 401, 404 (unknown user,
//! torrent or route), 409 (duplicate), 413 (body too large) or 500 (database). Input is
//! validated before the database is touched, so a refused request writes nothing. After
//! every change `on_change.notify_one()` tells the tracker to reload its registry.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::{
    AdminError, DEFAULT_DISABLE_REASON, MAX_MULTIPLIER_PERCENT, StatsView, TorrentView, UserView,
    create_user, disable, parse_hex_info_hash, renew_passkey,
};
use crate::db::{Db, DbError};
use crate::private::UploadMultiplier;

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 16 * 1024;

struct AdminState {
    db: Db,
    token_digest: [u8; 32],
    token_set: bool,
    on_change: Arc<Notify>,
}

impl AdminState {
    fn changed(&self) {
        self.on_change.notify_one();
    }
}

type Shared = State<Arc<AdminState>>;

/// The admin API's routes (mount under `/admin`): every request checked against `token`,
/// `on_change` notified after every change.
pub fn router(db: Db, token: String, on_change: Arc<Notify>) -> Router {
    let state = Arc::new(AdminState {
        db,
        token_digest: Sha256::digest(token.as_bytes()).into(),
        token_set: !token.is_empty(),
        on_change,
    });
    Router::new()
        .route("/users", get(list_users).post(add_user))
        .route("/users/{name}", get(show_user))
        .route("/users/{name}/disable", post(disable_user))
        .route("/users/{name}/enable", post(enable_user))
        .route("/users/{name}/passkey", post(reset_passkey))
        .route("/torrents", get(list_torrents).post(add_torrent))
        .route("/torrents/{info_hash}", delete(remove_torrent))
        .route("/stats", get(all_stats))
        .route("/stats/{name}", get(user_stats))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            authorize,
        ))
        .with_state(state)
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message }));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        let status = match &error {
            AdminError::Db(db) => match db {
                DbError::InvalidName(_) => StatusCode::BAD_REQUEST,
                DbError::DuplicateUser(_)
                | DbError::DuplicatePasskey
                | DbError::DuplicateTorrent(_) => StatusCode::CONFLICT,
                DbError::UnknownUser(_) | DbError::UnknownTorrent(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            _ => StatusCode::BAD_REQUEST,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!("admin API: {error}");
        }
        ApiError::new(status, error.to_string())
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        ApiError::from(AdminError::Db(error))
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Constant-time comparison of the bearer token's digest with the configured one.
fn token_matches(state: &AdminState, headers: &HeaderMap) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return false;
    };
    let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    let diff = given
        .iter()
        .zip(state.token_digest.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    state.token_set & (std::hint::black_box(diff) == 0)
}

async fn authorize(State(state): Shared, request: Request, next: Next) -> Response {
    if token_matches(&state, request.headers()) {
        next.run(request).await
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong admin token").into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such admin route")
}

/// Reads a JSON body (an empty body is `default` when given), refusing oversized bodies
/// (413) and malformed JSON or unknown fields (400).
fn parse_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    default: Option<T>,
) -> ApiResult<T> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, format!("request body over {MAX_BODY} bytes"))
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text())
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace)
        && let Some(default) = default
    {
        return Ok(default);
    }
    let invalid = |e: serde_json::Error| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}"))
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(invalid)?;
    // serde would also read a struct from an array of its fields; only objects are meant.
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid JSON body: expected an object",
        ));
    }
    serde_json::from_value(value).map_err(invalid)
}

fn path<T>(path: Result<Path<T>, PathRejection>) -> ApiResult<T> {
    path.map(|Path(value)| value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Disable {
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTorrent {
    info_hash: String,
    #[serde(default)]
    freeleech: bool,
    upload_multiplier_percent: Option<u32>,
}

async fn list_users(State(state): Shared) -> ApiResult<Json<Vec<UserView>>> {
    let users = state.db.list_users().await?;
    Ok(Json(users.iter().map(|u| UserView::new(u, None)).collect()))
}

async fn add_user(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let new: NewUser = parse_body(body, None)?;
    let user = create_user(&state.db, &new.name).await?;
    state.changed();
    Ok((StatusCode::CREATED, Json(UserView::new(&user, None))))
}

async fn show_user(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<UserView>> {
    let user = state.db.user(&path(name)?).await?;
    Ok(Json(UserView::new(&user, None)))
}

async fn disable_user(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<UserView>> {
    let name = path(name)?;
    let request: Disable = parse_body(body, Some(Disable::default()))?;
    let reason = request.reason.as_deref().unwrap_or(DEFAULT_DISABLE_REASON);
    let user = disable(&state.db, &name, reason).await?;
    state.changed();
    Ok(Json(UserView::new(&user, None)))
}

async fn enable_user(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<UserView>> {
    let user = state.db.enable_user(&path(name)?).await?;
    state.changed();
    Ok(Json(UserView::new(&user, None)))
}

async fn reset_passkey(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<UserView>> {
    let user = renew_passkey(&state.db, &path(name)?).await?;
    state.changed();
    Ok(Json(UserView::new(&user, None)))
}

async fn list_torrents(State(state): Shared) -> ApiResult<Json<Vec<TorrentView>>> {
    let torrents = state.db.list_torrents().await?;
    Ok(Json(torrents.iter().map(TorrentView::from).collect()))
}

async fn add_torrent(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<TorrentView>)> {
    let new: NewTorrent = parse_body(body, None)?;
    let info_hash = parse_hex_info_hash(&new.info_hash)?;
    let percent = new.upload_multiplier_percent.unwrap_or(100);
    if percent > MAX_MULTIPLIER_PERCENT {
        return Err(AdminError::BadMultiplier(format!("{percent}%")).into());
    }
    let torrent = state
        .db
        .add_torrent_with(&info_hash, new.freeleech, UploadMultiplier(percent))
        .await?;
    state.changed();
    Ok((StatusCode::CREATED, Json(TorrentView::from(&torrent))))
}

async fn remove_torrent(
    State(state): Shared,
    info_hash: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<TorrentView>> {
    let info_hash = parse_hex_info_hash(&path(info_hash)?)?;
    let torrent = state.db.remove_torrent(&info_hash).await?;
    state.changed();
    Ok(Json(TorrentView::from(&torrent)))
}

async fn all_stats(State(state): Shared) -> ApiResult<Json<Vec<StatsView>>> {
    let all = state.db.all_user_stats().await?;
    Ok(Json(
        all.iter()
            .map(|(user, stats)| StatsView::new(user, stats))
            .collect(),
    ))
}

async fn user_stats(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<StatsView>> {
    let name = path(name)?;
    let user = state.db.user(&name).await?;
    let stats = state.db.user_stats(&name).await?;
    Ok(Json(StatsView::new(&user, &stats)))
}
