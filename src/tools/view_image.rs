//! The `view_image` tool (context.md §3): the model names a local image (PNG, JPEG, GIF or
//! WebP, at most 20 MiB) and gets it back as an `input_image` data URL in the call's output,
//! so the next request carries it; an `imageView` item shows which file. Offered only to models
//! that take image input. A file that is missing, too large or not an image is a tool error the
//! model reads, never a failed turn.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CallResult, ToolCall};
use crate::protocol::ThreadItem;
use crate::turn::TurnRunner;

/// The tool's name.
pub const NAME: &str = "view_image";
/// Largest image sent.
const MAX_IMAGE_BYTES: u64 = 20 * 1024 * 1024;

/// The function tool offered to the model.
pub fn definition() -> Value {
    json!({
        "type": "function",
        "name": NAME,
        "description": "Shows you a local image file (PNG, JPEG, GIF or WebP, up to 20 MiB) so you can look at it, e.g. a screenshot or a rendered chart.",
        "strict": false,
        "parameters": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The image file; relative paths start at the working directory."}
            },
            "required": ["path"],
            "additionalProperties": false
        }
    })
}

#[derive(Deserialize)]
struct Args {
    path: String,
}

/// The MIME type of image data, from its first bytes; `None` when it is not a supported image.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Reads `path` as an image: its data URL, or the error the model should read.
fn load(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read image {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("cannot read image {shown}: not a regular file"));
    }
    if meta.len() > MAX_IMAGE_BYTES {
        return Err(format!(
            "image {shown} is {} bytes, more than the 20 MiB limit",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_IMAGE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read image {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        return Err(format!("image {shown} is more than the 20 MiB limit"));
    }
    let mime = sniff(&bytes).ok_or_else(|| {
        format!("{shown} is not an image this tool can show (PNG, JPEG, GIF or WebP expected)")
    })?;
    Ok(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    ))
}

/// Runs one `view_image` call.
pub fn run(turn: &mut TurnRunner, call: &ToolCall) -> CallResult {
    let plain = |text: String| CallResult {
        output: call.output_item(&text),
        cancelled: false,
    };
    let args: Args = match serde_json::from_str(&call.payload) {
        Ok(args) => args,
        Err(e) => return plain(format!("failed to parse function arguments: {e}")),
    };
    let path = resolve(&turn.tools().settings.cwd, &args.path);
    let url = match load(&path) {
        Ok(url) => url,
        Err(message) => return plain(message),
    };
    let item = ThreadItem::ImageView {
        id: call.call_id.clone(),
        path: path.display().to_string(),
    };
    turn.item_started(&item);
    turn.item_completed(item);
    CallResult {
        output: json!({
            "type": "function_call_output",
            "call_id": call.call_id,
            "output": [{"type": "input_image", "image_url": url, "detail": "high"}],
        }),
        cancelled: false,
    }
}

fn resolve(cwd: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn image_kinds_by_content() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some("image/png")),
            (&[0xff, 0xd8, 0xff, 0xe0, 0, 0x10], Some("image/jpeg")),
            (b"GIF89a\x01\0", Some("image/gif")),
            (b"GIF87a", Some("image/gif")),
            (b"RIFF\x24\0\0\0WEBPVP8 ", Some("image/webp")),
            (b"RIFF\x24\0\0\0WAVEfmt ", None),
            (b"\x89PNG", None),
            (b"this is text, not a png", None),
            (b"", None),
        ];
        for (bytes, mime) in cases {
            assert_eq!(sniff(bytes), *mime, "{bytes:?}");
        }
    }

    #[test]
    fn loading_reports_clear_errors() {
        let dir = std::env::temp_dir().join(format!("codex-lite-view-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.gif"), b"GIF89a\x01\0\x01\0").unwrap();
        std::fs::write(dir.join("fake.png"), b"not an image").unwrap();
        let big = std::fs::File::create(dir.join("big.png")).unwrap();
        big.set_len(MAX_IMAGE_BYTES + 1).unwrap();
        assert_eq!(
            load(&dir.join("a.gif")).unwrap(),
            "data:image/gif;base64,R0lGODlhAQABAA=="
        );
        assert!(
            load(&dir.join("fake.png"))
                .unwrap_err()
                .contains("is not an image")
        );
        assert!(load(&dir.join("big.png")).unwrap_err().contains("20 MiB"));
        assert!(
            load(&dir.join("missing.png"))
                .unwrap_err()
                .contains("cannot read image")
        );
        assert!(load(&dir).unwrap_err().contains("not a regular file"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
