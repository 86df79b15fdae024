//! The one way every genomics input is opened: a path, or `-` for standard input; plain text, gzip or
//! bgzip (BGZF is a series of gzip members), told apart by the first bytes, never by the file name. Other
//! compressions (zstd, bzip2, xz, zip) are refused with a message that says which one it is. Read errors
//! inside compressed data say that the file is truncated or corrupt instead of flate2's bare wording.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::GenomeError;

const BUF: usize = 1 << 20;

/// How an input is stored, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Plain,
    /// gzip: read as a series of gzip members.
    Gzip,
    /// bgzip (BGZF: gzip members carrying a `BC` extra field), read like gzip; told apart only for
    /// messages and for the inputs that are read by region.
    Bgzip,
}

impl Compression {
    /// The word for messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Plain => "plain text",
            Compression::Gzip => "gzip",
            Compression::Bgzip => "bgzip",
        }
    }
}

/// An opened input: its name for messages (`<stdin>` for `-`) and a line reader over its text.
pub struct Input {
    pub name: PathBuf,
    pub compression: Compression,
    pub reader: Box<dyn BufRead + Send>,
}

/// True for the path that means standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens `path` (`-`: standard input) for reading text, decompressing gzip and bgzip.
pub fn open(path: &Path) -> Result<Input, GenomeError> {
    if is_stdin(path) {
        return open_reader(PathBuf::from("<stdin>"), io::stdin());
    }
    let file = File::open(path).map_err(|source| GenomeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    open_reader(path.to_path_buf(), file)
}

/// Opens `path` and returns only its line reader (the common case).
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>, GenomeError> {
    Ok(open(path)?.reader)
}

/// Wraps any byte source (a file, stdin, bytes in a test) the way [`open`] does; `name` is for messages.
pub fn open_reader<R: Read + Send + 'static>(
    name: PathBuf,
    mut raw: R,
) -> Result<Input, GenomeError> {
    // Up to 16 bytes (a BGZF header's `BC` is at 12), however a pipe splits them (`take` + `read_to_end`
    // loops until 16 or the end), then put back in front of the rest.
    let mut magic = Vec::with_capacity(16);
    (&mut raw)
        .take(16)
        .read_to_end(&mut magic)
        .map_err(|source| GenomeError::Io {
            path: name.clone(),
            source,
        })?;
    let compression = sniff(&name, &magic)?;
    let whole = io::Cursor::new(magic).chain(raw);
    let reader: Box<dyn BufRead + Send> = match compression {
        Compression::Plain => Box::new(BufReader::with_capacity(BUF, whole)),
        Compression::Gzip | Compression::Bgzip => Box::new(BufReader::with_capacity(
            BUF,
            GzErrors(
                MultiGzDecoder::new(BufReader::with_capacity(BUF, whole)),
                compression.name(),
            ),
        )),
    };
    Ok(Input {
        name,
        compression,
        reader,
    })
}

/// Plain or gzip from the first bytes; a clear error for the compressions we do not read.
fn sniff(name: &Path, magic: &[u8]) -> Result<Compression, GenomeError> {
    let unsupported = |what: &str, tool: &str| GenomeError::Unsupported {
        path: name.to_path_buf(),
        message: format!(
            "the data is {what}-compressed, which is not read here; decompress it (`{tool}`) or \
             recompress it with bgzip"
        ),
    };
    match magic {
        [0x1f, 0x8b, _, flg, _, _, _, _, _, _, _, _, b'B', b'C', ..] if flg & 4 != 0 => {
            Ok(Compression::Bgzip)
        }
        [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Err(unsupported("zstd", "zstd -d")),
        [b'B', b'Z', b'h', ..] => Err(unsupported("bzip2", "bunzip2")),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Err(unsupported("xz", "unxz")),
        [b'P', b'K', 0x03, 0x04, ..] => Err(GenomeError::Unsupported {
            path: name.to_path_buf(),
            message: "this is a zip archive, not a text file; unzip it first".into(),
        }),
        _ => Ok(Compression::Plain),
    }
}

/// flate2's errors for bad compressed data say "corrupt deflate stream" or "unexpected end of file"
/// without saying which layer failed; this names it (and the compression: gzip or bgzip).
struct GzErrors<R>(R, &'static str);

impl<R: Read> Read for GzErrors<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let kind = self.1;
        self.0.read(out).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(
                e.kind(),
                format!(
                    "the {kind} data ends early: the file is truncated (an incomplete download or \
                     copy?)"
                ),
            ),
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                io::Error::new(e.kind(), format!("the {kind} data is corrupt ({e})"))
            }
            _ => e,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;

    use super::*;

    fn read_all(input: Input) -> io::Result<String> {
        let mut s = String::new();
        let mut r = input.reader;
        r.read_to_string(&mut s)?;
        Ok(s)
    }

    fn gz(text: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    fn bytes(name: &str, data: Vec<u8>) -> Result<Input, GenomeError> {
        open_reader(PathBuf::from(name), io::Cursor::new(data))
    }

    #[test]
    fn plain_text_passes_through() {
        let i = bytes("a.fa", b">x\nACGT\n".to_vec()).unwrap();
        assert_eq!(i.compression, Compression::Plain);
        assert_eq!(read_all(i).unwrap(), ">x\nACGT\n");
    }

    #[test]
    fn gzip_and_concatenated_members_like_bgzip() {
        let i = bytes("a.fa", gz(b">x\nACGT\n")).unwrap();
        assert_eq!(i.compression, Compression::Gzip);
        assert_eq!(read_all(i).unwrap(), ">x\nACGT\n");
        let mut two = gz(b">x\nAC");
        two.extend(gz(b"GT\n"));
        assert_eq!(
            read_all(bytes("b.fa.gz", two).unwrap()).unwrap(),
            ">x\nACGT\n"
        );
    }

    #[test]
    fn noodles_bgzf_output_reads() {
        let mut w = noodles_bgzf::io::Writer::new(Vec::new());
        w.write_all(b"##fileformat=VCFv4.2\n").unwrap();
        let data = w.finish().unwrap();
        let i = bytes("v.vcf.gz", data).unwrap();
        assert_eq!(i.compression, Compression::Bgzip);
        assert_eq!(read_all(i).unwrap(), "##fileformat=VCFv4.2\n");
    }

    #[test]
    fn the_name_does_not_decide() {
        // Plain text named .gz and gzip named .fa are both read by their content.
        assert_eq!(
            read_all(bytes("x.gz", b"AC\n".to_vec()).unwrap()).unwrap(),
            "AC\n"
        );
        assert_eq!(
            read_all(bytes("x.fa", gz(b"AC\n")).unwrap()).unwrap(),
            "AC\n"
        );
    }

    #[test]
    fn truncated_input_says_which_compression_ends_early() {
        let text = b"ACGT".repeat(10_000);
        let mut w = noodles_bgzf::io::Writer::new(Vec::new());
        w.write_all(&text).unwrap();
        for (data, word) in [(gz(&text), "gzip"), (w.finish().unwrap(), "bgzip")] {
            let cut = data[..data.len() / 2].to_vec();
            let err = read_all(bytes("cut.fa.gz", cut).unwrap()).unwrap_err();
            let want = format!("the {word} data ends early: the file is truncated");
            assert!(err.to_string().contains(&want), "{err}");
        }
    }

    #[test]
    fn other_compressions_are_named() {
        for (magic, word) in [
            (vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0], "zstd"),
            (b"BZh91AY".to_vec(), "bzip2"),
            (vec![0xfd, b'7', b'z', b'X', b'Z', 0], "xz"),
            (b"PK\x03\x04rest".to_vec(), "zip"),
        ] {
            let err = bytes("g.fa.gz", magic).err().expect("refused").to_string();
            assert!(err.contains(word) && err.contains("g.fa.gz"), "{err}");
        }
    }

    #[test]
    fn empty_and_tiny_inputs() {
        assert_eq!(read_all(bytes("e", Vec::new()).unwrap()).unwrap(), "");
        assert_eq!(read_all(bytes("t", b"A".to_vec()).unwrap()).unwrap(), "A");
    }

    #[test]
    fn a_pipe_is_read_like_a_file() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "printf '>p\\nAC'; sleep 0.05; printf 'GT\\n'"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let i = open_reader(PathBuf::from("<pipe>"), out).unwrap();
        assert_eq!(read_all(i).unwrap(), ">p\nACGT\n");
        child.wait().unwrap();
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let err = open(Path::new("/nonexistent/g.fa"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/nonexistent/g.fa"), "{err}");
    }
}
