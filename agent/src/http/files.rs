//! `/files/browse`, `/files/read` and `/files/download` with Mesos's semantics, confined to
//! the sandboxes of the tasks this agent knows (live and recently completed).
//!
//! A path is a sandbox path as `/state` reports it (`directory`), or Mesos's virtual form
//! `/frameworks/<framework>/executors/<executor>/runs/latest/...`. It is resolved in three
//! steps, each of which can only narrow access: the path must not contain `..`; it must lie
//! inside a known sandbox; and once symbolic links are resolved, the file actually opened
//! (checked on the open descriptor, so a link swapped in meanwhile does not help) must still
//! lie inside that sandbox.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use corral_state::{ExecutorId, FrameworkId};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::AgentApi;

/// The most `/files/read` returns at once: 16 pages, as Mesos.
pub const MAX_READ_LENGTH: u64 = 16 * 4096;
const DOWNLOAD_CHUNK: usize = 64 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct FileQuery {
    path: Option<String>,
    offset: Option<String>,
    length: Option<String>,
}

fn query(query: Result<Query<FileQuery>, QueryRejection>) -> Result<FileQuery, ApiError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| ApiError::bad_request("query", rejection.body_text()))
}

/// A sandbox the API may show, with the names it is known by.
struct Sandbox {
    directory: PathBuf,
    framework_id: FrameworkId,
    executor_id: ExecutorId,
}

fn sandboxes(api: &AgentApi) -> Vec<Sandbox> {
    let tasks = api.tasks();
    tasks
        .live()
        .into_iter()
        .chain(tasks.completed())
        .map(|record| Sandbox {
            executor_id: record.executor_id(),
            framework_id: record.framework_id,
            directory: record.sandbox,
        })
        .collect()
}

/// A path inside a sandbox, symbolic links resolved.
struct Confined {
    path: PathBuf,
    /// The sandbox, symbolic links resolved.
    root: PathBuf,
}

/// Finds the sandbox `requested` names and the path inside it; nothing on disk is read yet.
fn locate(requested: &str, sandboxes: &[Sandbox]) -> Result<(PathBuf, PathBuf), ApiError> {
    if requested.is_empty() {
        return Err(ApiError::bad_request("path", "is required"));
    }
    let path = Path::new(requested);
    if path.components().any(|component| component == Component::ParentDir) {
        return Err(ApiError::forbidden("path", format!("{requested} must not contain '..'")));
    }
    let not_found =
        || ApiError::not_found("path", format!("no sandbox of this agent holds {requested}"));
    let names: Vec<&str> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => name.to_str(),
            _ => None,
        })
        .collect();
    if !path.has_root() {
        return Err(not_found());
    }
    if let ["frameworks", framework, "executors", executor, "runs", "latest", rest @ ..] =
        names.as_slice()
    {
        let sandbox = sandboxes
            .iter()
            .find(|sandbox| {
                sandbox.framework_id.as_str() == *framework
                    && sandbox.executor_id.as_str() == *executor
            })
            .ok_or_else(not_found)?;
        return Ok((sandbox.directory.clone(), rest.iter().collect()));
    }
    sandboxes
        .iter()
        .filter_map(|sandbox| {
            let rest = path.strip_prefix(&sandbox.directory).ok()?;
            Some((sandbox.directory.components().count(), &sandbox.directory, rest))
        })
        .max_by_key(|(depth, _, _)| *depth)
        .map(|(_, directory, rest)| (directory.clone(), rest.to_owned()))
        .ok_or_else(not_found)
}

fn io_error(requested: &str, error: std::io::Error) -> ApiError {
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            ApiError::not_found("path", format!("{requested}: no such file or directory"))
        }
        std::io::ErrorKind::PermissionDenied => {
            ApiError::forbidden("path", format!("{requested}: permission denied"))
        }
        _ => ApiError::Internal(format!("cannot open {requested}: {error}")),
    }
}

fn escapes(requested: &str) -> ApiError {
    ApiError::forbidden("path", format!("{requested} leads outside its sandbox"))
}

/// Resolves `requested` to a file or directory inside a sandbox.
fn confine(api: &AgentApi, requested: &str) -> Result<Confined, ApiError> {
    let (directory, rest) = locate(requested, &sandboxes(api))?;
    let root = std::fs::canonicalize(&directory).map_err(|error| io_error(requested, error))?;
    let path =
        std::fs::canonicalize(root.join(rest)).map_err(|error| io_error(requested, error))?;
    if !path.starts_with(&root) {
        return Err(escapes(requested));
    }
    Ok(Confined { path, root })
}

/// Opens the confined path and checks that what was opened is still inside the sandbox:
/// a link swapped in after `confine` looked is caught here.
fn open(confined: &Confined, requested: &str) -> Result<File, ApiError> {
    let file = File::open(&confined.path).map_err(|error| io_error(requested, error))?;
    let opened = std::fs::read_link(descriptor_path(&file)).map_err(|error| {
        ApiError::Internal(format!("cannot check what {requested} opened: {error}"))
    })?;
    if !opened.starts_with(&confined.root) {
        return Err(escapes(requested));
    }
    Ok(file)
}

/// The descriptor's own name: the file it holds, whatever the path now names.
fn descriptor_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::Internal(format!("file access task failed: {error}")))?
}

/// `GET /files/browse?path=`: the directory's entries, sorted by name, as Mesos lists them.
pub async fn browse(
    State(api): State<AgentApi>,
    params: Result<Query<FileQuery>, QueryRejection>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let requested = query(params)?.path.unwrap_or_default();
    let listing = blocking(move || {
        let confined = confine(&api, &requested)?;
        let directory = open(&confined, &requested)?;
        let metadata = directory.metadata().map_err(|error| io_error(&requested, error))?;
        if !metadata.is_dir() {
            return Err(ApiError::bad_request("path", format!("{requested} is not a directory")));
        }
        let entries = std::fs::read_dir(descriptor_path(&directory))
            .map_err(|error| io_error(&requested, error))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| io_error(&requested, error))?;
            // The entry's own metadata: a link is listed as a link, never followed.
            let Ok(metadata) = entry.metadata() else { continue };
            names.push((entry.file_name().to_string_lossy().into_owned(), metadata));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let base = requested.trim_end_matches('/');
        let mut owners = Owners::default();
        Ok(names
            .into_iter()
            .map(|(name, metadata)| {
                json!({
                    "path": format!("{base}/{name}"),
                    "nlink": metadata.nlink(),
                    "size": metadata.len(),
                    "mtime": metadata.mtime(),
                    "mode": mode_string(&metadata),
                    "uid": owners.user(metadata.uid()),
                    "gid": owners.group(metadata.gid()),
                })
            })
            .collect())
    })
    .await?;
    Ok(Json(listing))
}

/// `ls -l`'s mode column, as Mesos shows it.
fn mode_string(metadata: &std::fs::Metadata) -> String {
    let file_type = metadata.file_type();
    let kind = if file_type.is_dir() {
        'd'
    } else if file_type.is_symlink() {
        'l'
    } else if file_type.is_file() {
        '-'
    } else {
        '?'
    };
    let mode = metadata.permissions().mode();
    let mut text = String::from(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        text.push(if bits & 0o4 != 0 { 'r' } else { '-' });
        text.push(if bits & 0o2 != 0 { 'w' } else { '-' });
        text.push(if bits & 0o1 != 0 { 'x' } else { '-' });
    }
    text
}

/// User and group names, looked up once per listing.
#[derive(Default)]
struct Owners {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Owners {
    fn user(&mut self, uid: u32) -> String {
        self.users
            .entry(uid)
            .or_insert_with(|| match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
                Ok(Some(user)) => user.name,
                _ => uid.to_string(),
            })
            .clone()
    }

    fn group(&mut self, gid: u32) -> String {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)) {
                    Ok(Some(group)) => group.name,
                    _ => gid.to_string(),
                }
            })
            .clone()
    }
}

/// `-1` (Mesos's "absent") or a non-negative number.
fn parse_position(field: &str, text: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    let value: i64 = text
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request(field, format!("'{text}' is not a number")))?;
    match value {
        -1 => Ok(None),
        value if value < 0 => Err(ApiError::bad_request(
            field,
            format!("{value} is negative; give -1 or a number of bytes from 0"),
        )),
        value => Ok(Some(value as u64)),
    }
}

/// `GET /files/read?path=&offset=&length=`: `{"data", "offset"}`. Without an offset (or with
/// `-1`) the answer is `{"data": "", "offset": <size>}`, where a follower starts; at most
/// `MAX_READ_LENGTH` bytes come back at once.
pub async fn read(
    State(api): State<AgentApi>,
    params: Result<Query<FileQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query(params)?;
    let offset = parse_position("offset", params.offset.as_deref())?;
    let length = parse_position("length", params.length.as_deref())?;
    let requested = params.path.unwrap_or_default();
    let answer = blocking(move || {
        let confined = confine(&api, &requested)?;
        let mut file = open(&confined, &requested)?;
        let metadata = file.metadata().map_err(|error| io_error(&requested, error))?;
        if metadata.is_dir() {
            return Err(ApiError::bad_request("path", format!("{requested} is a directory")));
        }
        let size = metadata.len();
        let Some(offset) = offset.filter(|&offset| offset < size) else {
            return Ok(json!({"data": "", "offset": size}));
        };
        let length = length.unwrap_or(size - offset).min(MAX_READ_LENGTH);
        file.seek(SeekFrom::Start(offset)).map_err(|error| io_error(&requested, error))?;
        let mut bytes = Vec::new();
        file.take(length).read_to_end(&mut bytes).map_err(|error| io_error(&requested, error))?;
        Ok(json!({"data": text_of(&bytes), "offset": offset}))
    })
    .await?;
    Ok(Json(answer))
}

/// JSON strings hold text: a character cut at the end of the chunk is left for the next
/// read (so offsets stay exact), and bytes that are not UTF-8 become U+FFFD.
fn text_of(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(error) if error.error_len().is_none() && error.valid_up_to() > 0 => {
            String::from_utf8_lossy(&bytes[..error.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// `GET /files/download?path=`: the file's bytes, streamed, as an attachment.
pub async fn download(
    State(api): State<AgentApi>,
    params: Result<Query<FileQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let requested = query(params)?.path.unwrap_or_default();
    let (file, size, name) = blocking(move || {
        let confined = confine(&api, &requested)?;
        let file = open(&confined, &requested)?;
        let metadata = file.metadata().map_err(|error| io_error(&requested, error))?;
        if metadata.is_dir() {
            return Err(ApiError::bad_request("path", format!("{requested} is a directory")));
        }
        let name = confined
            .path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "download".to_owned());
        Ok((file, metadata.len(), name))
    })
    .await?;
    // A log still being written grows while it is sent: send what `Content-Length` says.
    let file = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), size);
    // The stream ends after the first error: the client sees a cut body, not a loop.
    let chunks = futures::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut buffer = vec![0; DOWNLOAD_CHUNK];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok::<_, std::io::Error>(Bytes::from(buffer)), Some(file)))
            }
            Err(error) => {
                tracing::warn!(%error, "sandbox download broke off");
                Some((Err(error), None))
            }
        }
    });
    let disposition = format!("attachment; filename=\"{}\"", name.replace(['"', '\\'], "_"));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
