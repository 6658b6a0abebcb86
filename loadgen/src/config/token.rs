//! The agent's bearer token, read from the file a flag names (`--agent-token`, `agent --token`).

/// The longest token read (4 KiB): a request line and its headers must carry it.
pub const MAX_TOKEN_BYTES: u64 = 4096;

/// Reads the bearer token in `path`, given with `flag`: trimmed, and refused when empty (an
/// empty token would let any request in), when the file is a device or FIFO (`/dev/zero`
/// would never end), or when it is over [`MAX_TOKEN_BYTES`].
pub fn read_token(flag: &str, path: &std::path::Path) -> Result<String, crate::error::Error> {
    let input = |why: String| crate::error::Error::Input(format!("{flag} {}: {why}", path.display()));
    crate::os::files::check_input_file(path, "a token file", MAX_TOKEN_BYTES).map_err(|e| input(e.to_string()))?;
    let token = std::fs::read_to_string(path).map_err(|e| input(e.to_string()))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(input("the file is empty: write the token in it".to_string()));
    }
    Ok(token.to_string())
}
