//! Reading what `torch.save(model.state_dict(), "x.pth")` writes, without Python: the zip
//! format of PyTorch ≥ 1.6 (an archive holding `data.pkl`, a pickle of the dict with each
//! tensor's storage as a persistent id, and one raw little-endian file per storage under
//! `data/`) and the legacy format before it (see [`read_legacy`]), in which many published
//! weights (e.g. unet-pytorch's) were saved.
//!
//! libtorch's loaders reachable from tch (`Tensor::load_multi`, `loadz_multi`) read
//! TorchScript archives and `torch::save` files, not Python pickles, so this module runs the
//! small subset of the pickle machine that `torch.save` emits (protocols 2–5): dicts, lists,
//! tuples, strings, numbers, `collections.OrderedDict` and `torch._utils._rebuild_tensor_v2`
//! / `_rebuild_parameter`. Any other class is kept as an opaque object, never executed.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor};

use crate::error::{Result, TrainError};

/// A pickled value, as far as a state dict needs.
#[derive(Debug, Clone)]
enum Value {
    /// `None`, booleans, floats, bytes: nothing a state dict's tensors depend on.
    Scalar,
    Int(i64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// `module.name`, a class or function reference.
    Global(String, String),
    /// A storage: its dtype and its file `data/<key>` in the archive.
    Storage(Kind, String),
    Tensor(TensorRef),
    /// Anything else that was reduced: never called, only carried along.
    Object,
}

/// A tensor view of a storage.
#[derive(Debug, Clone)]
struct TensorRef {
    kind: Kind,
    key: String,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

fn ints(v: &Value) -> Option<Vec<i64>> {
    match v {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|x| match x {
                Value::Int(i) => Some(*i),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Every storage a persistent id named: key → dtype.
    storages: HashMap<String, Kind>,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Machine {
            data,
            pos: 0,
            stack: vec![],
            marks: vec![],
            memo: HashMap::new(),
            storages: HashMap::new(),
        }
    }

    /// Run the next pickle of the stream (each `pickle.dump` has its own memo).
    fn next_pickle(&mut self) -> std::result::Result<Value, String> {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        self.run()
    }

    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.pos + n > self.data.len() {
            return Err("truncated pickle".into());
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn line(&mut self) -> std::result::Result<String, String> {
        let start = self.pos;
        while self.pos < self.data.len() && self.data[self.pos] != b'\n' {
            self.pos += 1;
        }
        let s = String::from_utf8_lossy(&self.data[start..self.pos]).into_owned();
        self.pos += 1;
        Ok(s)
    }
    fn pop(&mut self) -> std::result::Result<Value, String> {
        self.stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".into())
    }
    fn pop_mark(&mut self) -> std::result::Result<Vec<Value>, String> {
        let m = self.marks.pop().ok_or("pickle MARK missing")?;
        if m > self.stack.len() {
            return Err("pickle MARK beyond the stack".into());
        }
        Ok(self.stack.split_off(m))
    }
    fn top(&mut self) -> std::result::Result<&mut Value, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "pickle stack underflow".into())
    }
    fn string(&mut self, n: usize) -> std::result::Result<Value, String> {
        Ok(Value::Str(
            String::from_utf8_lossy(self.take(n)?).into_owned(),
        ))
    }

    fn reduce(func: Value, args: Value) -> std::result::Result<Value, String> {
        let args = match args {
            Value::Tuple(a) => a,
            _ => return Ok(Value::Object),
        };
        let Value::Global(module, name) = func else {
            return Ok(Value::Object);
        };
        Ok(match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") => Value::Dict(vec![]),
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
                let (Some(Value::Storage(kind, key)), Some(Value::Int(offset))) =
                    (args.first(), args.get(1))
                else {
                    return Err(format!("{name}: unexpected arguments"));
                };
                let size = args.get(2).and_then(ints).ok_or("tensor size")?;
                let stride = args.get(3).and_then(ints).ok_or("tensor stride")?;
                Value::Tensor(TensorRef {
                    kind: *kind,
                    key: key.clone(),
                    offset: *offset,
                    size,
                    stride,
                })
            }
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state") => {
                args.into_iter().next().unwrap_or(Value::Scalar)
            }
            _ => Value::Object,
        })
    }

    fn run(&mut self) -> std::result::Result<Value, String> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.stack.push(Value::Dict(vec![])),
                b']' => self.stack.push(Value::List(vec![])),
                b')' => self.stack.push(Value::Tuple(vec![])),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let mut it = items.into_iter();
                    let mut d = vec![];
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                    self.stack.push(Value::Dict(d));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err("pickle stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'r' => {
                    let i = self.u32()?;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'h' | b'j' => {
                    let i = if op == b'h' {
                        self.u8()? as u32
                    } else {
                        self.u32()?
                    };
                    let v = self.memo.get(&i).cloned().ok_or("pickle memo miss")?;
                    self.stack.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m, n)),
                        _ => return Err("STACK_GLOBAL needs two strings".into()),
                    }
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8c | b'U' => {
                    let n = self.u8()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    let v = self.string(n as usize)?;
                    self.stack.push(v);
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                b'B' | b'C' => {
                    let n = if op == b'B' {
                        self.u32()? as usize
                    } else {
                        self.u8()? as usize
                    };
                    self.take(n)?;
                    self.stack.push(Value::Scalar);
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
                    self.stack.push(Value::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let b = self.take(2)?;
                    self.stack
                        .push(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i64));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        // Only the legacy format's magic number is this long.
                        self.stack.push(Value::Scalar);
                        continue;
                    }
                    let mut v: i64 = 0;
                    for (i, byte) in b.iter().enumerate() {
                        v |= (*byte as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Value::Scalar);
                }
                b'N' | 0x88 | 0x89 => self.stack.push(Value::Scalar),
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = Self::reduce(func, args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    let _args = self.pop()?;
                    let _cls = self.pop()?;
                    self.stack.push(Value::Object);
                }
                b'b' => {
                    // BUILD sets attributes (e.g. a state dict's `_metadata`): not needed.
                    self.pop()?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    if let Value::Dict(d) = self.top()? {
                        d.push((k, v));
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if let Value::Dict(d) = self.top()? {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            d.push((k, v));
                        }
                    }
                }
                b'a' => {
                    let v = self.pop()?;
                    if let Value::List(l) = self.top()? {
                        l.push(v);
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    if let Value::List(l) = self.top()? {
                        l.extend(items);
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = match pid {
                        Value::Tuple(t) if matches!(t.first(), Some(Value::Str(s)) if s == "storage") =>
                        {
                            let kind = match t.get(1) {
                                Some(Value::Global(_, n)) => storage_kind(n)
                                    .ok_or_else(|| format!("unsupported storage type {n}"))?,
                                _ => return Err("storage without a type".into()),
                            };
                            let key = match t.get(2) {
                                Some(Value::Str(k)) => k.clone(),
                                _ => return Err("storage without a key".into()),
                            };
                            // The legacy format's storage views (6th item) are not used by
                            // state dicts.
                            if matches!(t.get(5), Some(Value::Tuple(_))) {
                                return Err(
                                    "storage views (legacy format) are not supported".into()
                                );
                            }
                            self.storages.insert(key.clone(), kind);
                            Value::Storage(kind, key)
                        }
                        _ => return Err("unknown persistent id".into()),
                    };
                    self.stack.push(v);
                }
                _ => return Err(format!("unsupported pickle opcode 0x{op:02x}")),
            }
        }
    }
}

/// The dict of tensors in a pickled value: the value itself, or the entry `state_dict`,
/// `model`, `model_state_dict`, `net` or `state` of a training checkpoint dict.
fn tensor_dict(v: &Value) -> Option<Vec<(String, TensorRef)>> {
    let Value::Dict(entries) = v else {
        return None;
    };
    let tensors: Vec<(String, TensorRef)> = entries
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => Some((k.clone(), t.clone())),
            _ => None,
        })
        .collect();
    if !tensors.is_empty() {
        return Some(tensors);
    }
    for wanted in ["state_dict", "model_state_dict", "model", "net", "state"] {
        for (k, v) in entries {
            if matches!(k, Value::Str(s) if s == wanted) {
                if let Some(t) = tensor_dict(v) {
                    return Some(t);
                }
            }
        }
    }
    None
}

/// Read the tensors of a `torch.save` file (zip format) by name, on the CPU, contiguous.
pub fn read(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let bad = |m: String| TrainError::checkpoint(path, m);
    let file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(format!("not a PyTorch zip archive ({e})")))?;
    let pkl_name = zip
        .file_names()
        .find(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .map(String::from)
        .ok_or_else(|| bad("no data.pkl in the archive: not written by torch.save".into()))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    if let Ok(mut f) = zip.by_name(&format!("{prefix}byteorder")) {
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        if s.trim() == "big" {
            return Err(bad("big-endian tensor data is not supported".into()));
        }
    }
    let mut pkl = Vec::new();
    zip.by_name(&pkl_name)
        .and_then(|mut f| f.read_to_end(&mut pkl).map_err(Into::into))
        .map_err(|e| bad(format!("{pkl_name}: {e}")))?;
    let mut m = Machine::new(&pkl);
    let value = m.run().map_err(|e| bad(format!("{pkl_name}: {e}")))?;
    let tensors = tensor_dict(&value).ok_or_else(|| no_tensors(path))?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for (name, t) in &tensors {
        if !storages.contains_key(&t.key) {
            let entry = format!("{prefix}data/{}", t.key);
            let mut bytes = Vec::new();
            zip.by_name(&entry)
                .and_then(|mut f| f.read_to_end(&mut bytes).map_err(Into::into))
                .map_err(|e| bad(format!("tensor {name}: {entry}: {e}")))?;
            storages.insert(t.key.clone(), bytes);
        }
    }
    build(path, tensors, &storages)
}

fn no_tensors(path: &Path) -> TrainError {
    TrainError::checkpoint(
        path,
        "holds no dict of tensors (expected torch.save(model.state_dict()) or a checkpoint dict with a \"state_dict\" entry)",
    )
}

/// Read the legacy `torch.save` format (PyTorch < 1.6, or `_use_new_zipfile_serialization =
/// False`): four pickles (magic number, protocol version, system info, the object), the
/// pickled list of storage keys, then each storage as an int64 element count and raw data.
pub fn read_legacy(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let bad = |m: String| TrainError::checkpoint(path, m);
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let mut m = Machine::new(&bytes);
    let mut value = Value::Scalar;
    for what in ["magic number", "protocol version", "system info", "object"] {
        value = m
            .next_pickle()
            .map_err(|e| bad(format!("legacy torch.save format, {what}: {e}")))?;
    }
    let kinds = std::mem::take(&mut m.storages);
    let keys = match m.next_pickle() {
        Ok(Value::List(keys)) => keys,
        _ => return Err(bad("legacy torch.save format: no storage key list".into())),
    };
    let mut storages = HashMap::new();
    let mut pos = m.pos;
    for key in keys {
        let Value::Str(key) = key else {
            return Err(bad(
                "legacy torch.save format: a storage key is not a string".into(),
            ));
        };
        let kind = *kinds
            .get(&key)
            .ok_or_else(|| bad(format!("storage {key} has no type")))?;
        let truncated = || bad(format!("storage {key}: file truncated"));
        let n = bytes.get(pos..pos + 8).ok_or_else(truncated)?;
        let numel = i64::from_le_bytes(n.try_into().expect("8 bytes"));
        let len = usize::try_from(numel).map_err(|_| truncated())? * kind.elt_size_in_bytes();
        let data = bytes.get(pos + 8..pos + 8 + len).ok_or_else(truncated)?;
        storages.insert(key, data.to_vec());
        pos += 8 + len;
    }
    let tensors = tensor_dict(&value).ok_or_else(|| no_tensors(path))?;
    build(path, tensors, &storages)
}

/// The tensors of a state dict, each a contiguous copy of its view of a storage.
fn build(
    path: &Path,
    tensors: Vec<(String, TensorRef)>,
    storages: &HashMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, Tensor>> {
    let bad = |m: String| TrainError::checkpoint(path, m);
    let mut out = BTreeMap::new();
    for (name, t) in tensors {
        let bytes = storages
            .get(&t.key)
            .ok_or_else(|| bad(format!("tensor {name}: storage {} is missing", t.key)))?;
        let elem = t.kind.elt_size_in_bytes();
        let numel = (bytes.len() / elem) as i64;
        // The furthest element the view touches must lie inside the storage.
        let last = t.offset
            + t.size
                .iter()
                .zip(&t.stride)
                .map(|(s, st)| (s - 1).max(0) * st)
                .sum::<i64>();
        if t.size.contains(&0) {
            out.insert(name, Tensor::zeros(&t.size, (t.kind, tch::Device::Cpu)));
            continue;
        }
        if t.offset < 0 || last >= numel {
            return Err(bad(format!(
                "tensor {name}: view {:?} at offset {} exceeds its storage of {numel} elements",
                t.size, t.offset
            )));
        }
        let storage = Tensor::from_data_size(bytes, &[numel], t.kind);
        let view = storage
            .as_strided(&t.size, &t.stride, Some(t.offset))
            .contiguous();
        out.insert(name, view);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn unicode(out: &mut Vec<u8>, s: &str) {
        out.push(b'X');
        out.extend((s.len() as u32).to_le_bytes());
        out.extend(s.as_bytes());
    }

    /// `_rebuild_tensor_v2` of storage "0" (6 floats) at `offset` with `size` and `stride`.
    fn tensor(out: &mut Vec<u8>, first: bool, offset: u8, size: &[u8], stride: &[u8]) {
        if first {
            out.extend(b"ctorch._utils\n_rebuild_tensor_v2\nq\x02");
        } else {
            out.extend(b"h\x02"); // BINGET of the memoized function
        }
        out.extend(b"((");
        unicode(out, "storage");
        out.extend(b"ctorch\nFloatStorage\n");
        unicode(out, "0");
        unicode(out, "cpu");
        out.extend(b"K\x06tQK");
        out.push(offset);
        for dims in [size, stride] {
            out.push(b'(');
            for d in dims {
                out.extend([b'K', *d]);
            }
            out.push(b't');
        }
        out.extend(b"\x89ccollections\nOrderedDict\n)RtR");
    }

    /// A checkpoint dict as training scripts save it, `{"state_dict": OrderedDict(a, b),
    /// "epoch": 3}`, whose tensors are a transposed view at an offset and a prefix of one
    /// shared storage: the layout the reader must honour.
    #[test]
    fn reads_strided_views_of_shared_storage_inside_a_checkpoint_dict() {
        let mut pkl = b"\x80\x02}q\x00(".to_vec();
        unicode(&mut pkl, "state_dict");
        pkl.extend(b"ccollections\nOrderedDict\n)Rq\x01(");
        unicode(&mut pkl, "a");
        tensor(&mut pkl, true, 1, &[2, 2], &[1, 2]);
        unicode(&mut pkl, "b");
        tensor(&mut pkl, false, 0, &[3], &[1]);
        pkl.push(b'u');
        unicode(&mut pkl, "epoch");
        pkl.extend(b"K\x03u.");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.pth");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("ckpt/data.pkl", opts).unwrap();
        zip.write_all(&pkl).unwrap();
        zip.start_file("ckpt/data/0", opts).unwrap();
        for v in [0f32, 1., 2., 3., 4., 5.] {
            zip.write_all(&v.to_le_bytes()).unwrap();
        }
        zip.finish().unwrap();

        let t = read(&path).unwrap();
        assert_eq!(t.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            Vec::<f32>::try_from(t["a"].flatten(0, -1)).unwrap(),
            [1., 3., 2., 4.]
        );
        assert_eq!(t["a"].size(), [2, 2]);
        assert_eq!(Vec::<f32>::try_from(&t["b"]).unwrap(), [0., 1., 2.]);
    }

    #[test]
    fn refuses_non_archives_and_pickles_without_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.pth");
        std::fs::write(&text, "hello").unwrap();
        let err = read(&text).unwrap_err().to_string();
        assert!(
            err.contains("notes.pth") && err.contains("not a PyTorch zip archive"),
            "{err}"
        );

        let path = dir.path().join("empty.pth");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        zip.start_file("empty/data.pkl", Default::default())
            .unwrap();
        zip.write_all(b"\x80\x02}q\x00.").unwrap();
        zip.finish().unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("holds no dict of tensors"), "{err}");
    }
}
