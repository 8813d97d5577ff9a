//! The one document model every sops store parses into and emits from, as sops
//! itself has it: ordered maps whose items are key/value pairs or comments, lists
//! whose items are values or comments, and typed scalars. Crypto walks this tree;
//! stores never do crypto.

/// A value in a sops document. Before decryption (and after encryption) an
/// encrypted scalar is a `Str` holding `ENC[AES256_GCM,…]`, and an encrypted comment
/// is a `Comment` holding the same form.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    /// sops's `int` (Go `int`, 64 bits).
    Int(i64),
    /// sops's `float` (Go `float64`); rendered as Go's `FormatFloat(v, 'f', -1, 64)`.
    Float(f64),
    Bool(bool),
    /// A YAML timestamp, kept as its RFC 3339 text (sops's `time`).
    Time(String),
    /// A string that is not UTF-8: only the binary store's `data` value can be one.
    /// sops encrypts it with type `str`, as Go strings hold any bytes.
    Bytes(Vec<u8>),
    /// Not encrypted and not part of the MAC.
    Null,
    Map(Vec<Item>),
    /// List items may be comments (`Value::Comment`).
    List(Vec<Value>),
    /// A comment line, as a list item. Map comments are `Item::Comment`.
    Comment(String),
}

/// One item of a map: a key and its value, or a comment line.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Pair(String, Value),
    Comment(String),
}

/// The top-level maps of a document: one per YAML document, one for every other
/// store. In an encrypted file the `sops` metadata key is not part of a branch.
pub type Branches = Vec<Vec<Item>>;

/// What a store reads from an encrypted file: the document, and the `sops`
/// metadata as a map (flattened keys already unflattened for dotenv and INI).
#[derive(Debug, Clone, PartialEq)]
pub struct EncryptedDocument {
    pub branches: Branches,
    pub metadata: Vec<Item>,
}

/// A sops store: parsing and emitting one file format, plaintext and encrypted.
/// `file` names the input in errors, which give the line or key path and never
/// quote a value.
pub trait Store {
    /// A plaintext document as the user writes it.
    fn load_plain(&self, data: &[u8], file: &str) -> crate::error::Result<Branches>;
    /// An encrypted file: the document with the top-level `sops` key taken out.
    fn load_encrypted(&self, data: &[u8], file: &str) -> crate::error::Result<EncryptedDocument>;
    /// The plaintext document, as `sops decrypt` prints it.
    fn emit_plain(&self, branches: &Branches) -> crate::error::Result<Vec<u8>>;
    /// The encrypted file, as `sops encrypt` writes it, with `metadata` under `sops`.
    fn emit_encrypted(&self, doc: &EncryptedDocument) -> crate::error::Result<Vec<u8>>;
}
