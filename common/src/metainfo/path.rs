//! File path sanitising: no torrent may name a file outside its download folder.
//!
//! A path is a list of components below the torrent's root. Each component must be a plain
//! file or folder name: not empty, not `.` or `..`, without `/`, `\` or NUL, and not a
//! Windows drive prefix (`C:`). Absolute paths therefore cannot be expressed either: a leading
//! `/` shows up as an empty component or a component containing `/`.
//!
//! Not rejected here (the storage layer's business, since they are legal on Unix): Windows
//! reserved device names (`CON`, `NUL`, ...), trailing dots or spaces, over-long components.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

/// The deepest path (in components) a torrent may hold; real torrents stay far below it.
pub const MAX_PATH_DEPTH: usize = 128;

/// Why one path component is unsafe, or `None` if it is a plain name.
pub fn component_problem(component: &str) -> Option<&'static str> {
    if component.is_empty() {
        return Some("empty path component");
    }
    if component == "." || component == ".." {
        return Some("`.` or `..` path component");
    }
    if component.contains('\0') {
        return Some("NUL byte in path component");
    }
    if component.contains('/') || component.contains('\\') {
        return Some("path separator inside a component");
    }
    let bytes = component.as_bytes();
    if let [letter, b':', ..] = bytes
        && letter.is_ascii_alphabetic()
    {
        return Some("Windows drive prefix");
    }
    None
}

/// Why a whole path is unsafe, or `None` if every component is a plain name and the path
/// is neither empty nor deeper than [`MAX_PATH_DEPTH`].
pub fn path_problem<S: AsRef<str>>(components: &[S]) -> Option<&'static str> {
    if components.is_empty() {
        return Some("empty path");
    }
    if components.len() > MAX_PATH_DEPTH {
        return Some("path nested too deep");
    }
    components
        .iter()
        .find_map(|component| component_problem(component.as_ref()))
}

/// The components joined by `/`, for error messages.
pub fn display<S: AsRef<str>>(components: &[S]) -> String {
    let parts: Vec<&str> = components.iter().map(AsRef::as_ref).collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for name in [
            "a", "file.txt", ".hidden", "...", "a b", "ü", "C", "1:x", "ab:c",
        ] {
            assert_eq!(component_problem(name), None, "{name}");
        }
        assert_eq!(path_problem(&["dir", "sub", "f"]), None);
    }

    #[test]
    fn unsafe_components_fail() {
        let cases = [
            ("", "empty path component"),
            (".", "`.` or `..` path component"),
            ("..", "`.` or `..` path component"),
            ("a\0b", "NUL byte in path component"),
            ("a/b", "path separator inside a component"),
            ("/etc", "path separator inside a component"),
            ("a\\b", "path separator inside a component"),
            ("C:", "Windows drive prefix"),
            ("c:evil", "Windows drive prefix"),
        ];
        for (name, reason) in cases {
            assert_eq!(component_problem(name), Some(reason), "{name:?}");
        }
    }

    #[test]
    fn whole_paths() {
        let empty: [&str; 0] = [];
        assert_eq!(path_problem(&empty), Some("empty path"));
        assert_eq!(
            path_problem(&["a", "..", "b"]),
            Some("`.` or `..` path component")
        );
        let deep = vec!["d"; MAX_PATH_DEPTH + 1];
        assert_eq!(path_problem(&deep), Some("path nested too deep"));
        assert_eq!(path_problem(&deep[1..]), None);
        assert_eq!(display(&["a", "b"]), "a/b");
    }
}
