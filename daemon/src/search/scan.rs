//! Regex and literal scanners over stored text, case-insensitive and linear-time.
