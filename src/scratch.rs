//! A private RAM-backed directory for plaintext that must touch a file (edit, stage).
