//! Reading a small regular file whole, never waiting on a FIFO or a device:
//! the file is opened without blocking and checked on the opened descriptor.

use std::io::{self, Read};
use std::path::Path;

/// Why [`read_small_file`] read nothing.
#[derive(Debug)]
pub enum SmallFileError {
    /// It could not be opened or read (missing, no permission, not UTF-8).
    Io(io::Error),
    /// A folder, FIFO, socket or device.
    NotRegular,
    /// Larger than the bound: its size when the metadata told it, `None`
    /// when it grew past the bound while it was read.
    TooLarge(Option<u64>),
}

/// The text of the regular file at `path`, if it holds at most `max` bytes.
pub fn read_small_file(path: &Path, max: u64) -> Result<String, SmallFileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        (nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY).bits(),
    );
    let file = options.open(path).map_err(SmallFileError::Io)?;
    let meta = file.metadata().map_err(SmallFileError::Io)?;
    if !meta.is_file() {
        return Err(SmallFileError::NotRegular);
    }
    if meta.len() > max {
        return Err(SmallFileError::TooLarge(Some(meta.len())));
    }
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(SmallFileError::Io)?;
    if text.len() as u64 > max {
        return Err(SmallFileError::TooLarge(None));
    }
    Ok(text)
}
