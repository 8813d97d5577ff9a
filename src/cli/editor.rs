//! Running the user's editor on a plaintext file without losing it to signals.
