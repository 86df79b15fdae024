//! A restricted pickle reader and a minimal pickle writer for PyTorch state dicts.
//!
//! The reader interprets the opcodes of pickle protocols 0–5 that PyTorch and Python's pickler emit for state
//! dicts (and for the wrapper dicts around them: epoch numbers, optimizer state, strings, lists, ...). It never
//! imports or calls anything: a `GLOBAL` is only accepted when it names one of a few known PyTorch / standard
//! library callables, each of which is *interpreted* here (e.g. `torch._utils._rebuild_tensor_v2` builds a
//! [`TensorRef`] description). Everything else is rejected. All objects live in an arena and refer to each other
//! by index, so shared references (memo) and even cycles are harmless, and dropping the result is never recursive.
//! Every length read from the input is checked against the bytes that remain before anything is allocated.

use std::collections::HashMap;

use super::DType;

/// A pickle value: a scalar, or a reference to an object in the arena.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Obj(usize),
}

/// A callable or class named by a `GLOBAL` that the allowlist accepts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GlobalKind {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    /// `torch.<X>Storage`: `Ok` for the supported element types, `Err(class name)` otherwise (reported when a
    /// tensor actually uses it, so that the error can name the tensor).
    Storage(Result<DType, String>),
    Device,
    Size,
    Set,
    CodecsEncode,
    GetLayout,
}

/// A storage reference from a persistent id `('storage', StorageType, key, location, numel)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageRef {
    pub dtype: Result<DType, String>,
    pub key: String,
    pub numel: u64,
}

/// A tensor described by `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

/// An arena object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Obj {
    Str(String),
    Bytes(Vec<u8>),
    /// An integer that does not fit in i64 (value not kept).
    BigInt,
    Tuple(Vec<Val>),
    List(Vec<Val>),
    /// dict or OrderedDict: pairs in insertion order (pickles never repeat a key).
    Dict(Vec<(Val, Val)>),
    Set(Vec<Val>),
    Global(GlobalKind),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// A harmless value we do not model (e.g. a `torch.device`).
    Opaque(&'static str),
}

/// The unpickled object graph.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub objs: Vec<Obj>,
}

impl Graph {
    pub fn get(&self, v: &Val) -> Option<&Obj> {
        match v {
            Val::Obj(i) => self.objs.get(*i),
            _ => None,
        }
    }

    pub fn str(&self, v: &Val) -> Option<&str> {
        match self.get(v) {
            Some(Obj::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// A short description of a value's kind, for error messages.
    pub fn kind(&self, v: &Val) -> &'static str {
        match v {
            Val::None => "None",
            Val::Bool(_) => "a bool",
            Val::Int(_) => "an int",
            Val::Float(_) => "a float",
            Val::Obj(_) => match self.get(v) {
                Some(Obj::Str(_)) => "a str",
                Some(Obj::Bytes(_)) => "bytes",
                Some(Obj::BigInt) => "an int",
                Some(Obj::Tuple(_)) => "a tuple",
                Some(Obj::List(_)) => "a list",
                Some(Obj::Dict(_)) => "a dict",
                Some(Obj::Set(_)) => "a set",
                Some(Obj::Global(_)) => "a class or function",
                Some(Obj::Storage(_)) => "a storage",
                Some(Obj::Tensor(_)) => "a tensor",
                Some(Obj::Opaque(what)) => what,
                None => "an invalid reference",
            },
        }
    }

    fn push(&mut self, o: Obj) -> Val {
        self.objs.push(o);
        Val::Obj(self.objs.len() - 1)
    }
}

/// Why unpickling failed (the caller adds the file and record names).
#[derive(Debug)]
pub(crate) enum UnpickleError {
    /// Malformed input at a byte offset.
    Malformed { offset: usize, message: String },
    /// A global outside the allowlist.
    Forbidden { module: String, name: String },
}

fn allowed_global(module: &str, name: &str) -> Option<GlobalKind> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => GlobalKind::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => GlobalKind::RebuildTensorV2,
        ("torch._utils", "_rebuild_parameter") => GlobalKind::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => GlobalKind::RebuildParameterWithState,
        ("torch", "device") => GlobalKind::Device,
        ("torch", "Size") => GlobalKind::Size,
        ("builtins", "set") | ("builtins", "frozenset") | ("__builtin__", "set") => GlobalKind::Set,
        ("_codecs", "encode") => GlobalKind::CodecsEncode,
        ("torch.serialization", "_get_layout") => GlobalKind::GetLayout,
        ("torch", n) if n.ends_with("Storage") && n.len() > "Storage".len() => {
            GlobalKind::Storage(DType::from_torch_storage_name(n).ok_or_else(|| n.to_string()))
        }
        _ => return None,
    })
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being interpreted (for error messages).
    op_start: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, message: impl Into<String>) -> UnpickleError {
        UnpickleError::Malformed {
            offset: self.op_start,
            message: message.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], UnpickleError> {
        let remaining = self.data.len() - self.pos;
        if n > remaining {
            return Err(self.err(format!(
                "unexpected end of data: needed {n} bytes, {remaining} remain (truncated pickle?)"
            )));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, UnpickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, UnpickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, UnpickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, UnpickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length field, checked against the remaining input before use.
    fn len_checked(&mut self, n: u64) -> Result<usize, UnpickleError> {
        let remaining = (self.data.len() - self.pos) as u64;
        if n > remaining {
            return Err(self.err(format!(
                "length field says {n} bytes but only {remaining} remain (truncated or corrupt pickle)"
            )));
        }
        Ok(n as usize)
    }

    /// A newline-terminated line (text opcodes).
    fn line(&mut self) -> Result<&'a [u8], UnpickleError> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None => Err(self.err("unexpected end of data: missing newline (truncated pickle?)")),
        }
    }

    fn utf8(&self, b: &[u8]) -> Result<String, UnpickleError> {
        String::from_utf8(b.to_vec()).map_err(|_| self.err("string is not valid UTF-8"))
    }
}

/// Pickle opcode values (CPython `Lib/pickle.py`), named once for the reader, the writer and error messages.
mod opcode {
    /// Declares each opcode as a constant and lists them all with their names, for error messages.
    macro_rules! opcodes {
        ($($name:ident = $byte:expr,)*) => {
            $(pub const $name: u8 = $byte;)*
            pub const NAMES: [(u8, &str); 68] = [$(($name, stringify!($name)),)*];
        };
    }

    opcodes! {
        MARK = b'(', STOP = b'.', POP = b'0', POP_MARK = b'1', DUP = b'2', FLOAT = b'F', INT = b'I',
        BININT = b'J', BININT1 = b'K', LONG = b'L', BININT2 = b'M', NONE = b'N', PERSID = b'P',
        BINPERSID = b'Q', REDUCE = b'R', STRING = b'S', BINSTRING = b'T', SHORT_BINSTRING = b'U',
        UNICODE = b'V', BINUNICODE = b'X', APPEND = b'a', BUILD = b'b', GLOBAL = b'c', DICT = b'd',
        EMPTY_DICT = b'}', APPENDS = b'e', GET = b'g', BINGET = b'h', INST = b'i',
        LONG_BINGET = b'j', LIST = b'l', EMPTY_LIST = b']', OBJ = b'o', PUT = b'p', BINPUT = b'q',
        LONG_BINPUT = b'r', SETITEM = b's', TUPLE = b't', EMPTY_TUPLE = b')', SETITEMS = b'u',
        BINFLOAT = b'G', PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84,
        TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a,
        LONG4 = 0x8b, BINBYTES = b'B', SHORT_BINBYTES = b'C', SHORT_BINUNICODE = 0x8c,
        BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91,
        NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96,
        NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98,
    }
}

fn opcode_name(op: u8) -> &'static str {
    opcode::NAMES
        .iter()
        .find(|(b, _)| *b == op)
        .map_or("unknown", |(_, name)| name)
}

/// Decodes a little-endian two's-complement integer (LONG1/LONG4 payload).
fn decode_long(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() {
        return Some(0);
    }
    if bytes.len() > 8 {
        // Fits only if the extra bytes are pure sign extension.
        let (lo, hi) = bytes.split_at(8);
        let sign = if lo[7] & 0x80 != 0 { 0xff } else { 0 };
        if hi.iter().any(|&b| b != sign) {
            return None;
        }
        return decode_long(lo);
    }
    let neg = bytes[bytes.len() - 1] & 0x80 != 0;
    let mut a = if neg { [0xffu8; 8] } else { [0u8; 8] };
    a[..bytes.len()].copy_from_slice(bytes);
    Some(i64::from_le_bytes(a))
}

struct Machine<'a> {
    reader: Reader<'a>,
    graph: Graph,
    stack: Vec<Val>,
    marks: Vec<usize>,
    memo: HashMap<u64, Val>,
    /// Container slots copied so far (e.g. `OrderedDict(list)` copies the list). Bounded by `copy_budget` so
    /// that a small pickle cannot make the reader allocate without bound by copying a big container repeatedly.
    copied: std::cell::Cell<usize>,
    copy_budget: usize,
}

impl<'a> Machine<'a> {
    /// Pops the top of the stack, never below the innermost MARK.
    fn pop(&mut self) -> Result<Val, UnpickleError> {
        self.top()?;
        self.stack
            .pop()
            .ok_or_else(|| self.reader.err("stack underflow"))
    }

    fn top(&self) -> Result<&Val, UnpickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.reader.err("stack underflow"));
        }
        self.stack
            .last()
            .ok_or_else(|| self.reader.err("stack underflow"))
    }

    /// Adds `items` to the set, list or dict on top of the stack (ADDITEMS, APPEND(S), SETITEM(S): a dict
    /// takes them as key, value pairs); `what` names the container the opcode `op` needs.
    fn extend_top(&mut self, op: &str, what: &str, items: Vec<Val>) -> Result<(), UnpickleError> {
        let target = self.top()?.clone();
        let obj = match &target {
            Val::Obj(i) => self.graph.objs.get_mut(*i),
            _ => None,
        };
        match obj {
            Some(Obj::Set(s)) if what == "a set" => s.extend(items),
            Some(Obj::List(l)) if what == "a list" => l.extend(items),
            Some(Obj::Dict(d)) if what == "a dict" => {
                d.extend(items.chunks_exact(2).map(|c| (c[0].clone(), c[1].clone())))
            }
            _ => {
                let k = self.graph.kind(&target);
                return Err(self
                    .reader
                    .err(format!("{op} target must be {what}, found {k}")));
            }
        }
        Ok(())
    }

    /// Pops everything above the most recent MARK (and the mark itself).
    fn pop_mark(&mut self) -> Result<Vec<Val>, UnpickleError> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.reader.err("no MARK on the stack"))?;
        if m > self.stack.len() {
            return Err(self.reader.err("MARK beyond the stack"));
        }
        Ok(self.stack.split_off(m))
    }

    fn push_obj(&mut self, o: Obj) {
        let v = self.graph.push(o);
        self.stack.push(v);
    }

    /// The payload of a length-prefixed opcode: a one-byte length for LONG1 and the SHORT_ forms, eight
    /// bytes for the …8 forms, four for the rest; checked against what is left before it is taken.
    fn counted_bytes(&mut self, op: u8) -> Result<&'a [u8], UnpickleError> {
        let n = match op {
            opcode::LONG1
            | opcode::SHORT_BINUNICODE
            | opcode::SHORT_BINSTRING
            | opcode::SHORT_BINBYTES => self.reader.u8()? as u64,
            opcode::BINUNICODE8 | opcode::BINBYTES8 | opcode::BYTEARRAY8 => self.reader.u64()?,
            _ => self.reader.u32()? as u64,
        };
        let n = self.reader.len_checked(n)?;
        self.reader.take(n)
    }

    /// The memo key of a PUT/GET opcode: a byte, a u32, the memo's length (MEMOIZE) or a decimal line.
    fn memo_index(&mut self, op: u8) -> Result<u64, UnpickleError> {
        Ok(match op {
            opcode::BINPUT | opcode::BINGET => self.reader.u8()? as u64,
            opcode::LONG_BINPUT | opcode::LONG_BINGET => self.reader.u32()? as u64,
            opcode::MEMOIZE => self.memo.len() as u64,
            _ => {
                let line = self.reader.line()?;
                std::str::from_utf8(line)
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(|| self.reader.err("bad PUT/GET memo index"))?
            }
        })
    }

    fn memo_put(&mut self, idx: u64) -> Result<(), UnpickleError> {
        let v = self.top()?.clone();
        self.memo.insert(idx, v);
        Ok(())
    }

    fn memo_get(&mut self, idx: u64) -> Result<(), UnpickleError> {
        let v = self
            .memo
            .get(&idx)
            .cloned()
            .ok_or_else(|| self.reader.err(format!("memo key {idx} was never stored")))?;
        self.stack.push(v);
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), UnpickleError> {
        match allowed_global(module, name) {
            Some(k) => {
                self.push_obj(Obj::Global(k));
                Ok(())
            }
            None => Err(UnpickleError::Forbidden {
                module: module.to_string(),
                name: name.to_string(),
            }),
        }
    }

    /// Accounts for `n` copied container slots (checked after every opcode, see [`Machine::run`]).
    fn charge(&self, n: usize) {
        self.copied.set(self.copied.get().saturating_add(n));
    }

    fn tuple_items(&self, v: &Val) -> Option<Vec<Val>> {
        match self.graph.get(v) {
            Some(Obj::Tuple(items)) | Some(Obj::List(items)) => {
                self.charge(items.len());
                Some(items.clone())
            }
            _ => None,
        }
    }

    fn int_list(&self, v: &Val, what: &str) -> Result<Vec<u64>, UnpickleError> {
        let items = self.tuple_items(v).ok_or_else(|| {
            self.reader.err(format!(
                "_rebuild_tensor_v2: {what} must be a tuple, found {}",
                self.graph.kind(v)
            ))
        })?;
        items
            .iter()
            .map(|x| match x {
                Val::Int(i) if *i >= 0 => Ok(*i as u64),
                _ => Err(self.reader.err(format!(
                    "_rebuild_tensor_v2: {what} must hold non-negative ints, found {}",
                    self.graph.kind(x)
                ))),
            })
            .collect()
    }

    /// `v` as a non-negative integer, or the error `need`.
    fn count(&self, v: &Val, need: &str) -> Result<u64, UnpickleError> {
        match *v {
            Val::Int(i) if i >= 0 => Ok(i as u64),
            _ => Err(self.reader.err(need)),
        }
    }

    /// What `pick` takes from the object `v` refers to, or the error "{need}, found {its kind}".
    fn expect_obj<T>(
        &self,
        v: &Val,
        need: &str,
        pick: impl Fn(&Obj) -> Option<T>,
    ) -> Result<T, UnpickleError> {
        self.graph.get(v).and_then(pick).ok_or_else(|| {
            self.reader
                .err(format!("{need}, found {}", self.graph.kind(v)))
        })
    }

    fn reduce(&mut self, func: Val, args: Val) -> Result<Val, UnpickleError> {
        let kind = self.expect_obj(&func, "REDUCE needs a class or function", |o| match o {
            Obj::Global(k) => Some(k.clone()),
            _ => None,
        })?;
        let args = self.expect_obj(&args, "REDUCE arguments must be a tuple", |o| match o {
            Obj::Tuple(a) => Some(a.clone()),
            _ => None,
        })?;
        match kind {
            GlobalKind::OrderedDict => {
                let mut pairs = Vec::new();
                if let Some(src) = args.first() {
                    let items = self.tuple_items(src).ok_or_else(|| {
                        self.reader
                            .err("OrderedDict(...) argument must be a list of (key, value) pairs")
                    })?;
                    for it in items {
                        match self.tuple_items(&it) {
                            Some(kv) if kv.len() == 2 => pairs.push((kv[0].clone(), kv[1].clone())),
                            _ => {
                                return Err(self
                                    .reader
                                    .err("OrderedDict(...) items must be (key, value) pairs"))
                            }
                        }
                    }
                }
                Ok(self.graph.push(Obj::Dict(pairs)))
            }
            GlobalKind::RebuildTensorV2 => {
                if args.len() != 6 && args.len() != 7 {
                    return Err(self.reader.err(format!(
                        "_rebuild_tensor_v2 expects 6 or 7 arguments, found {}",
                        args.len()
                    )));
                }
                let storage = self.expect_obj(
                    &args[0],
                    "_rebuild_tensor_v2: first argument must be a storage (persistent id)",
                    |o| match o {
                        Obj::Storage(s) => Some(s.clone()),
                        _ => None,
                    },
                )?;
                let offset = self.count(
                    &args[1],
                    "_rebuild_tensor_v2: storage offset must be a non-negative int",
                )?;
                let size = self.int_list(&args[2], "size")?;
                let stride = self.int_list(&args[3], "stride")?;
                if size.len() != stride.len() {
                    return Err(self.reader.err(format!(
                        "_rebuild_tensor_v2: size has {} dimensions but stride has {}",
                        size.len(),
                        stride.len()
                    )));
                }
                Ok(self.graph.push(Obj::Tensor(TensorRef {
                    storage,
                    offset,
                    size,
                    stride,
                })))
            }
            GlobalKind::RebuildParameter | GlobalKind::RebuildParameterWithState => {
                let want = if kind == GlobalKind::RebuildParameter {
                    3
                } else {
                    4
                };
                if args.len() != want {
                    return Err(self.reader.err(format!(
                        "_rebuild_parameter expects {want} arguments, found {}",
                        args.len()
                    )));
                }
                match self.graph.get(&args[0]) {
                    Some(Obj::Tensor(_)) => Ok(args[0].clone()),
                    _ => Err(self
                        .reader
                        .err("_rebuild_parameter: first argument must be a tensor")),
                }
            }
            GlobalKind::Set => {
                let items = match args.first() {
                    Some(v) => self
                        .tuple_items(v)
                        .ok_or_else(|| self.reader.err("set(...) argument must be a list"))?,
                    None => Vec::new(),
                };
                Ok(self.graph.push(Obj::Set(items)))
            }
            GlobalKind::Size => match args.first() {
                Some(v) => {
                    let items = self.tuple_items(v).ok_or_else(|| {
                        self.reader.err("torch.Size(...) argument must be a tuple")
                    })?;
                    Ok(self.graph.push(Obj::Tuple(items)))
                }
                None => Ok(self.graph.push(Obj::Tuple(Vec::new()))),
            },
            GlobalKind::Device => Ok(self.graph.push(Obj::Opaque("a torch.device"))),
            GlobalKind::GetLayout => Ok(self.graph.push(Obj::Opaque("a torch.layout"))),
            GlobalKind::CodecsEncode => {
                let text = args
                    .first()
                    .and_then(|v| self.graph.str(v))
                    .ok_or_else(|| self.reader.err("_codecs.encode expects a str"))?
                    .to_string();
                let enc = args
                    .get(1)
                    .and_then(|v| self.graph.str(v))
                    .unwrap_or("utf-8");
                let bytes = match enc {
                    "latin1" | "latin-1" | "iso-8859-1" => text
                        .chars()
                        .map(|c| u8::try_from(u32::from(c)).map_err(|_| ()))
                        .collect::<Result<Vec<u8>, ()>>()
                        .map_err(|_| {
                            self.reader.err("_codecs.encode: character outside latin-1")
                        })?,
                    "utf-8" | "utf8" => text.into_bytes(),
                    other => {
                        return Err(self
                            .reader
                            .err(format!("_codecs.encode: unsupported encoding {other:?}")))
                    }
                };
                Ok(self.graph.push(Obj::Bytes(bytes)))
            }
            GlobalKind::Storage(_) => Err(self.reader.err("a storage class cannot be called")),
        }
    }

    fn persistent_load(&mut self, pid: Val) -> Result<Val, UnpickleError> {
        let items = match self.graph.get(&pid) {
            Some(Obj::Tuple(t)) => {
                self.charge(t.len());
                t.clone()
            }
            _ => {
                return Err(self.reader.err(format!(
                    "persistent id must be a tuple, found {}",
                    self.graph.kind(&pid)
                )))
            }
        };
        if items.first().and_then(|v| self.graph.str(v)) != Some("storage") || items.len() != 5 {
            return Err(self.reader.err(
                "unsupported persistent id (expected ('storage', StorageType, key, location, numel))",
            ));
        }
        let dtype = match self.graph.get(&items[1]) {
            Some(Obj::Global(GlobalKind::Storage(d))) => d.clone(),
            _ => {
                return Err(self.reader.err(format!(
                    "persistent id: storage type must be a torch.*Storage class, found {}",
                    self.graph.kind(&items[1])
                )))
            }
        };
        let key = self
            .graph
            .str(&items[2])
            .ok_or_else(|| self.reader.err("persistent id: storage key must be a str"))?
            .to_string();
        if self.graph.str(&items[3]).is_none() {
            return Err(self.reader.err("persistent id: location must be a str"));
        }
        let numel = self.count(&items[4], "persistent id: numel must be a non-negative int")?;
        Ok(self
            .graph
            .push(Obj::Storage(StorageRef { dtype, key, numel })))
    }

    fn run(mut self) -> Result<(Graph, Val), UnpickleError> {
        loop {
            if self.copied.get() > self.copy_budget {
                return Err(self.reader.err(format!(
                    "the pickle copies more than {} container items; refusing to continue (malicious or corrupt?)",
                    self.copy_budget
                )));
            }
            self.reader.op_start = self.reader.pos;
            if self.reader.pos >= self.reader.data.len() {
                return Err(self
                    .reader
                    .err("unexpected end of data before STOP (truncated pickle?)"));
            }
            let op = self.reader.u8()?;
            match op {
                opcode::PROTO => {
                    let p = self.reader.u8()?;
                    if p > 5 {
                        return Err(self.reader.err(format!("unsupported pickle protocol {p}")));
                    }
                }
                opcode::FRAME => {
                    let n = self.reader.u64()?;
                    self.reader.len_checked(n)?;
                }
                opcode::STOP => {
                    let v = self.pop()?;
                    return Ok((self.graph, v));
                }
                opcode::MARK => self.marks.push(self.stack.len()),
                opcode::POP => {
                    self.pop()?;
                }
                opcode::POP_MARK => {
                    self.pop_mark()?;
                }
                opcode::DUP => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                opcode::NONE => self.stack.push(Val::None),
                opcode::NEWTRUE => self.stack.push(Val::Bool(true)),
                opcode::NEWFALSE => self.stack.push(Val::Bool(false)),
                opcode::BININT => {
                    let v = self.reader.u32()? as i32;
                    self.stack.push(Val::Int(v as i64));
                }
                opcode::BININT1 => {
                    let v = self.reader.u8()?;
                    self.stack.push(Val::Int(v as i64));
                }
                opcode::BININT2 => {
                    let v = self.reader.u16()?;
                    self.stack.push(Val::Int(v as i64));
                }
                opcode::LONG1 | opcode::LONG4 => {
                    let bytes = self.counted_bytes(op)?;
                    match decode_long(bytes) {
                        Some(v) => self.stack.push(Val::Int(v)),
                        None => self.push_obj(Obj::BigInt),
                    }
                }
                opcode::INT | opcode::LONG => {
                    let line = self.reader.line()?;
                    let text = std::str::from_utf8(line)
                        .map_err(|_| self.reader.err("bad INT/LONG text"))?;
                    let text = text.trim_end_matches('L');
                    match text {
                        "00" => self.stack.push(Val::Bool(false)),
                        "01" if op == opcode::INT => self.stack.push(Val::Bool(true)),
                        _ => match text.parse::<i64>() {
                            Ok(v) => self.stack.push(Val::Int(v)),
                            Err(_)
                                if !text.is_empty()
                                    && text
                                        .trim_start_matches('-')
                                        .bytes()
                                        .all(|b| b.is_ascii_digit()) =>
                            {
                                self.push_obj(Obj::BigInt)
                            }
                            Err(_) => {
                                return Err(self
                                    .reader
                                    .err(format!("bad integer literal {text:?}")))
                            }
                        },
                    }
                }
                opcode::BINFLOAT => {
                    let b = self.reader.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(Val::Float(f64::from_be_bytes(a)));
                }
                opcode::FLOAT => {
                    let line = self.reader.line()?;
                    let v = std::str::from_utf8(line)
                        .ok()
                        .and_then(|t| t.trim().parse::<f64>().ok())
                        .ok_or_else(|| self.reader.err("bad FLOAT literal"))?;
                    self.stack.push(Val::Float(v));
                }
                opcode::BINUNICODE | opcode::SHORT_BINUNICODE | opcode::BINUNICODE8 => {
                    let b = self.counted_bytes(op)?;
                    let s = self.reader.utf8(b)?;
                    self.push_obj(Obj::Str(s));
                }
                opcode::SHORT_BINSTRING | opcode::BINSTRING => {
                    // Python 2 byte strings: decoded as latin-1 text, as torch.load does for old checkpoints.
                    let b = self.counted_bytes(op)?;
                    let s: String = b.iter().map(|&c| c as char).collect();
                    self.push_obj(Obj::Str(s));
                }
                opcode::BINBYTES
                | opcode::SHORT_BINBYTES
                | opcode::BINBYTES8
                | opcode::BYTEARRAY8 => {
                    let b = self.counted_bytes(op)?.to_vec();
                    self.push_obj(Obj::Bytes(b));
                }
                opcode::EMPTY_TUPLE => self.push_obj(Obj::Tuple(Vec::new())),
                opcode::TUPLE1..=opcode::TUPLE3 => {
                    let n = (op - opcode::TUPLE1) as usize + 1;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push_obj(Obj::Tuple(items));
                }
                opcode::TUPLE => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::Tuple(items));
                }
                opcode::EMPTY_LIST => self.push_obj(Obj::List(Vec::new())),
                opcode::LIST => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::List(items));
                }
                opcode::EMPTY_DICT => self.push_obj(Obj::Dict(Vec::new())),
                opcode::DICT => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.reader.err("DICT needs an even number of items"));
                    }
                    let pairs = items
                        .chunks_exact(2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    self.push_obj(Obj::Dict(pairs));
                }
                opcode::EMPTY_SET => self.push_obj(Obj::Set(Vec::new())),
                opcode::FROZENSET => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::Set(items));
                }
                opcode::ADDITEMS => {
                    let items = self.pop_mark()?;
                    self.extend_top("ADDITEMS", "a set", items)?;
                }
                opcode::APPEND | opcode::APPENDS => {
                    let items = if op == opcode::APPEND {
                        vec![self.pop()?]
                    } else {
                        self.pop_mark()?
                    };
                    self.extend_top("APPEND", "a list", items)?;
                }
                opcode::SETITEM | opcode::SETITEMS => {
                    let items = if op == opcode::SETITEM {
                        let v = self.pop()?;
                        let k = self.pop()?;
                        vec![k, v]
                    } else {
                        self.pop_mark()?
                    };
                    if items.len() % 2 != 0 {
                        return Err(self.reader.err("SETITEMS needs an even number of items"));
                    }
                    self.extend_top("SETITEM", "a dict", items)?;
                }
                opcode::BINPUT | opcode::LONG_BINPUT | opcode::MEMOIZE | opcode::PUT => {
                    let i = self.memo_index(op)?;
                    self.memo_put(i)?;
                }
                opcode::BINGET | opcode::LONG_BINGET | opcode::GET => {
                    let i = self.memo_index(op)?;
                    self.memo_get(i)?;
                }
                opcode::GLOBAL => {
                    let module = self.reader.line()?;
                    let module = self.reader.utf8(module)?;
                    let name = self.reader.line()?;
                    let name = self.reader.utf8(name)?;
                    self.global(&module, &name)?;
                }
                opcode::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(m), Some(n)) = (self.graph.str(&module), self.graph.str(&name))
                    else {
                        return Err(self.reader.err("STACK_GLOBAL needs two strings"));
                    };
                    let (m, n) = (m.to_string(), n.to_string());
                    self.global(&m, &n)?;
                }
                opcode::REDUCE => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.reduce(func, args)?;
                    self.stack.push(v);
                }
                opcode::NEWOBJ | opcode::NEWOBJ_EX => {
                    if op == opcode::NEWOBJ_EX {
                        self.pop()?; // kwargs
                    }
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    match self.graph.get(&cls) {
                        Some(Obj::Global(GlobalKind::OrderedDict)) => {
                            self.push_obj(Obj::Dict(Vec::new()))
                        }
                        Some(Obj::Global(GlobalKind::Set)) => self.push_obj(Obj::Set(Vec::new())),
                        _ => {
                            let v = self.reduce(cls, args)?;
                            self.stack.push(v);
                        }
                    }
                }
                opcode::BUILD => {
                    // The state is applied by Python to the object (e.g. an OrderedDict's `_metadata`, a
                    // parameter's attributes); none of it matters for the tensors, so it is dropped.
                    self.pop()?;
                    self.top()?;
                }
                opcode::BINPERSID => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(pid)?;
                    self.stack.push(v);
                }
                _ => {
                    return Err(self.reader.err(format!(
                        "unsupported pickle opcode 0x{op:02x} ({})",
                        opcode_name(op)
                    )))
                }
            }
        }
    }
}

/// Interprets a pickle under the allowlist. Returns the object graph and the root value.
pub(crate) fn unpickle(data: &[u8]) -> Result<(Graph, Val), UnpickleError> {
    Machine {
        reader: Reader {
            data,
            pos: 0,
            op_start: 0,
        },
        graph: Graph::default(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        copied: std::cell::Cell::new(0),
        copy_budget: data.len().saturating_mul(8).saturating_add(1 << 20),
    }
    .run()
}

/// One tensor entry for [`pickle_state_dict`].
pub(crate) struct PickleEntry<'a> {
    pub name: &'a str,
    pub dtype: DType,
    pub shape: &'a [usize],
    /// Storage key (the record name under `data/`).
    pub key: String,
    pub numel: usize,
}

/// Writes pickle opcodes the way CPython's protocol-2 pickler does for a state dict saved by `torch.save`.
struct Writer {
    out: Vec<u8>,
    next_memo: u32,
}

impl Writer {
    /// The end of a tensor's persistent id (`numel`, then the tuple, memoized, and `BINPERSID`) and the
    /// view arguments of `_rebuild_tensor_v2` after it: offset 0, size, contiguous stride, no gradient.
    /// Both writers emit these bytes for every tensor, exactly as `torch.save` does.
    fn storage_and_view(&mut self, e: &PickleEntry<'_>) {
        self.int(e.numel as i64);
        self.out.push(opcode::TUPLE);
        self.put();
        self.out.push(opcode::BINPERSID);
        self.int(0); // storage offset
        self.int_tuple(e.shape);
        self.int_tuple(&contiguous_strides(e.shape));
        self.out.push(opcode::NEWFALSE); // requires_grad = False
    }

    /// `backward_hooks = OrderedDict()` (the class is on the stack), then the argument tuple closed and
    /// `_rebuild_tensor_v2` applied to it, each result memoized as `torch.save` does.
    fn hooks_and_rebuild(&mut self) {
        self.out.extend_from_slice(b")R");
        self.put();
        self.out.push(opcode::TUPLE);
        self.put();
        self.out.push(opcode::REDUCE);
        self.put();
    }

    fn put(&mut self) -> u32 {
        let i = self.next_memo;
        if i < 256 {
            self.out.extend_from_slice(&[opcode::BINPUT, i as u8]);
        } else {
            self.out.push(opcode::LONG_BINPUT);
            self.out.extend_from_slice(&i.to_le_bytes());
        }
        self.next_memo += 1;
        i
    }

    fn get(&mut self, i: u32) {
        if i < 256 {
            self.out.extend_from_slice(&[opcode::BINGET, i as u8]);
        } else {
            self.out.push(opcode::LONG_BINGET);
            self.out.extend_from_slice(&i.to_le_bytes());
        }
    }

    fn global(&mut self, module: &str, name: &str) -> u32 {
        self.out.push(opcode::GLOBAL);
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
        self.put()
    }

    fn str(&mut self, s: &str) -> u32 {
        self.out.push(opcode::BINUNICODE);
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        self.put()
    }

    fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.out.extend_from_slice(&[opcode::BININT1, v as u8]);
        } else if (0..65536).contains(&v) {
            self.out.push(opcode::BININT2);
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            self.out.push(opcode::BININT);
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            // LONG1 with the minimal two's-complement encoding, as CPython writes it.
            let bytes = v.to_le_bytes();
            let mut n = 8;
            while n > 1 {
                let last = bytes[n - 1];
                let prev_sign = bytes[n - 2] & 0x80;
                if (last == 0 && prev_sign == 0) || (last == 0xff && prev_sign != 0) {
                    n -= 1;
                } else {
                    break;
                }
            }
            self.out.extend_from_slice(&[opcode::LONG1, n as u8]);
            self.out.extend_from_slice(&bytes[..n]);
        }
    }

    /// A tuple of ints, memoized unless empty (as CPython does).
    fn int_tuple(&mut self, items: &[usize]) {
        match items.len() {
            0 => {
                self.out.push(opcode::EMPTY_TUPLE);
                return;
            }
            1..=3 => {
                for &i in items {
                    self.int(i as i64);
                }
                self.out.push(opcode::TUPLE1 - 1 + items.len() as u8);
            }
            _ => {
                self.out.push(opcode::MARK);
                for &i in items {
                    self.int(i as i64);
                }
                self.out.push(opcode::TUPLE);
            }
        }
        self.put();
    }
}

/// Contiguous row-major strides, as `torch.empty(shape).stride()` gives them.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0usize; shape.len()];
    let mut acc = 1usize;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc = acc.saturating_mul(shape[i].max(1));
    }
    strides
}

/// Serialises a state dict's structure as `torch.save` does (protocol 2): an `OrderedDict` mapping each name to
/// `_rebuild_tensor_v2(persistent_id('storage', torch.<T>Storage, key, 'cpu', numel), 0, size, stride, False,
/// OrderedDict())`.
pub(crate) fn pickle_state_dict(entries: &[PickleEntry<'_>]) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(64 + entries.len() * 160),
        next_memo: 0,
    };
    w.out.extend_from_slice(&[opcode::PROTO, 2]);
    let od = w.global("collections", "OrderedDict");
    w.out.extend_from_slice(b")R");
    w.put();
    let mut rebuild: Option<u32> = None;
    let mut storage_str: Option<u32> = None;
    let mut cpu_str: Option<u32> = None;
    let mut storage_types: HashMap<DType, u32> = HashMap::new();
    for batch in entries.chunks(1000) {
        if batch.len() > 1 {
            w.out.push(opcode::MARK);
        }
        for e in batch {
            w.str(e.name);
            match rebuild {
                Some(i) => w.get(i),
                None => rebuild = Some(w.global("torch._utils", "_rebuild_tensor_v2")),
            }
            w.out.push(opcode::MARK); // args tuple
            w.out.push(opcode::MARK); // persistent id tuple
            match storage_str {
                Some(i) => w.get(i),
                None => storage_str = Some(w.str("storage")),
            }
            match storage_types.get(&e.dtype) {
                Some(&i) => w.get(i),
                None => {
                    let i = w.global("torch", e.dtype.torch_storage_name());
                    storage_types.insert(e.dtype, i);
                }
            }
            w.str(&e.key);
            // torch's location tag is one interned 'cpu' string, so CPython memoizes it after the first use.
            match cpu_str {
                Some(i) => w.get(i),
                None => cpu_str = Some(w.str("cpu")),
            }
            w.storage_and_view(e);
            w.get(od);
            w.hooks_and_rebuild();
        }
        w.out.push(if batch.len() > 1 {
            opcode::SETITEMS
        } else {
            opcode::SETITEM
        });
    }
    w.out.push(opcode::STOP);
    w.out
}

/// Serialises one bare tensor as `torch.save(tensor)` does (protocol 2): `_rebuild_tensor_v2(persistent_id(
/// 'storage', torch.<T>Storage, key, 'cpu', numel), 0, size, stride, False, OrderedDict())` at the root, the
/// byte sequence PyTorch writes for a CPU tensor without gradient.
pub(crate) fn pickle_tensor(e: &PickleEntry<'_>) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(160),
        next_memo: 0,
    };
    w.out.extend_from_slice(&[opcode::PROTO, 2]);
    w.global("torch._utils", "_rebuild_tensor_v2");
    w.out.push(opcode::MARK); // args tuple
    w.out.push(opcode::MARK); // persistent id tuple
    w.str("storage");
    w.global("torch", e.dtype.torch_storage_name());
    w.str(&e.key);
    w.str("cpu");
    w.storage_and_view(e);
    w.global("collections", "OrderedDict");
    w.hooks_and_rebuild();
    w.out.push(opcode::STOP);
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            127,
            128,
            255,
            256,
            -129,
            1 << 40,
            -(1 << 40),
            i64::MAX,
            i64::MIN,
        ] {
            let mut w = Writer {
                out: vec![0x80, 2],
                next_memo: 0,
            };
            w.int(v);
            w.out.push(b'.');
            let (_, got) = unpickle(&w.out).expect("valid pickle");
            assert_eq!(got, Val::Int(v));
        }
    }

    #[test]
    fn garbage_never_panics() {
        // Every prefix of a valid pickle, and a few byte flips, must give an error, not a panic.
        let shape = [2usize, 3];
        let entries = [PickleEntry {
            name: "w",
            dtype: DType::F32,
            shape: &shape,
            key: "0".into(),
            numel: 6,
        }];
        let good = pickle_state_dict(&entries);
        assert!(unpickle(&good).is_ok());
        for n in 0..good.len() {
            assert!(
                unpickle(&good[..n]).is_err(),
                "prefix of {n} bytes accepted"
            );
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= flip;
                let _ = unpickle(&bad);
            }
        }
    }

    #[test]
    fn repeated_copies_of_a_big_container_hit_the_budget() {
        // A list of 100k pairs, then 10k times OrderedDict(that list): ~1e9 copied slots from a ~1 MB pickle.
        let mut p = vec![0x80, 2, b']', b'q', 0, b'('];
        for _ in 0..100_000 {
            p.extend_from_slice(&[b'K', 1, b'K', 2, 0x86]);
        }
        p.push(b'e');
        p.extend_from_slice(b"ccollections\nOrderedDict\nq\x01");
        for _ in 0..10_000 {
            p.extend_from_slice(&[b'h', 1, b'h', 0, 0x85, b'R', b'0']);
        }
        p.extend_from_slice(b"h\x00.");
        match unpickle(&p) {
            Err(UnpickleError::Malformed { message, .. }) => {
                assert!(message.contains("copies more than"), "{message}")
            }
            other => panic!(
                "expected the copy budget to stop this pickle, got {:?}",
                other.map(|(_, v)| v)
            ),
        }
    }

    #[test]
    fn huge_length_fields_are_rejected_without_allocating() {
        let mut p = vec![0x80, 4, 0x8d];
        p.extend_from_slice(&u64::MAX.to_le_bytes());
        match unpickle(&p) {
            Err(UnpickleError::Malformed { message, .. }) => {
                assert!(message.contains("length field"), "{message}")
            }
            other => panic!("expected a malformed-pickle error, got {other:?}"),
        }
    }
}
