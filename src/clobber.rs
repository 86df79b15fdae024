//! Outputs never overwrite inputs: the one check every command makes before it writes anything.
//!
//! A command lists its inputs (flag and path) and its outputs (a file, or a directory with the names it
//! writes there) and calls [`Io::check`]. An output clashes with an input when both are the same file: the
//! same path once links are resolved, or the same file system object (device and inode on Unix, which
//! catches hard links). An input that sits in an output directory under the name of a file the command
//! writes there, or inside a folder the command fills (a run's `models/`, `LOG/`), is the same case: that
//! output path exists and is the input. `-` (standard input or output) and outputs that do not exist yet
//! never clash. An input that is a directory (an ensemble's folder of checkpoints) stands for the files
//! directly inside it.
//!
//! After the check, [`Io::check`] also tidies the output directories: temporary files of ours
//! ([`atomic::is_temp_name`]) left there by a killed run are removed ([`atomic::remove_stale_temps`]).

use std::path::{Path, PathBuf};

use crate::atomic;

/// An output that is one of the inputs: both flags and both paths, and how they are the same file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ClobberError {
    /// The output's flag, e.g. `-O` or `--output-dir`.
    pub output_flag: String,
    /// The output as given (a file, or the output directory).
    pub output_arg: PathBuf,
    /// The file the command would write.
    pub output: PathBuf,
    /// The input's flag, e.g. `-I`.
    pub input_flag: String,
    /// The input file.
    pub input: PathBuf,
    /// How the two are the same file.
    pub via: Via,
    /// The folder the command fills (a run's `models/`), when the output is any file in it rather than a
    /// name the command writes.
    pub folder: Option<PathBuf>,
}

/// How an output and an input are the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The same path (also spelled differently: relative, with `.` or `..`).
    SamePath,
    /// Different paths that resolve to the same file (a symbolic link on the way).
    Link,
    /// Two names of one file (a hard link).
    HardLink,
}

impl ClobberError {
    fn describe(&self) -> String {
        let via = match self.via {
            Via::SamePath => "the same file",
            Via::Link => "the same file through a link",
            Via::HardLink => "the same file through a hard link",
        };
        if let Some(folder) = &self.folder {
            let how = match self.via {
                Via::SamePath => String::new(),
                _ => format!(" ({} is {via})", self.output.display()),
            };
            format!(
                "{} {}: writing into {} would overwrite the input {} {}{how}; choose another output \
                 directory or move the input",
                self.output_flag,
                self.output_arg.display(),
                folder.display(),
                self.input_flag,
                self.input.display()
            )
        } else if self.output_arg == self.output {
            format!(
                "{} {}: the output would overwrite the input {} {} ({via}); write the output elsewhere",
                self.output_flag,
                self.output.display(),
                self.input_flag,
                self.input.display()
            )
        } else {
            format!(
                "{} {}: writing {} would overwrite the input {} {} ({via}); choose another output \
                 directory or move the input",
                self.output_flag,
                self.output_arg.display(),
                self.output.display(),
                self.input_flag,
                self.input.display()
            )
        }
    }
}

#[derive(Debug, Clone)]
enum Output {
    File {
        flag: String,
        path: PathBuf,
    },
    Dir {
        flag: String,
        dir: PathBuf,
        names: Vec<String>,
    },
}

/// A command's inputs and outputs, checked by [`Io::check`] before anything is written.
#[derive(Debug, Clone, Default)]
pub struct Io {
    inputs: Vec<(String, PathBuf)>,
    outputs: Vec<Output>,
}

impl Io {
    /// No inputs, no outputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// An input file (or a directory standing for the files directly inside it); `-` is standard input.
    pub fn input(mut self, flag: &str, path: impl AsRef<Path>) -> Self {
        self.inputs
            .push((flag.to_string(), path.as_ref().to_path_buf()));
        self
    }

    /// [`Io::input`] when given.
    pub fn input_opt<P: AsRef<Path>>(self, flag: &str, path: Option<P>) -> Self {
        match path {
            Some(p) => self.input(flag, p),
            None => self,
        }
    }

    /// An output file; `-` is standard output.
    pub fn output(mut self, flag: &str, path: impl AsRef<Path>) -> Self {
        self.outputs.push(Output::File {
            flag: flag.to_string(),
            path: path.as_ref().to_path_buf(),
        });
        self
    }

    /// [`Io::output`] when given.
    pub fn output_opt<P: AsRef<Path>>(self, flag: &str, path: Option<P>) -> Self {
        match path {
            Some(p) => self.output(flag, p),
            None => self,
        }
    }

    /// An output directory and what the command writes there. Each name is a path relative to `dir`: a
    /// file name (`dataset_train.h5`), a pattern with one `*` in its last part (`calibration-*.png`), or a
    /// folder ending in `/` whose every file the command may write (`models/`).
    pub fn output_dir<S: AsRef<str>>(
        mut self,
        flag: &str,
        dir: impl AsRef<Path>,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.outputs.push(Output::Dir {
            flag: flag.to_string(),
            dir: dir.as_ref().to_path_buf(),
            names: names.into_iter().map(|s| s.as_ref().to_string()).collect(),
        });
        self
    }

    /// [`Io::output_dir`] when given.
    pub fn output_dir_opt<S: AsRef<str>>(
        self,
        flag: &str,
        dir: Option<impl AsRef<Path>>,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        match dir {
            Some(d) => self.output_dir(flag, d, names),
            None => self,
        }
    }

    /// Refuses an output that is one of the inputs (the first clash found, naming both), then removes the
    /// temporary files a killed run of ours left in the output directories.
    pub fn check(&self) -> Result<(), Box<ClobberError>> {
        let inputs: Vec<(&str, &Path, PathBuf)> = self
            .inputs
            .iter()
            .flat_map(|(flag, path)| {
                input_files(path)
                    .into_iter()
                    .map(move |f| (flag.as_str(), path.as_path(), f))
            })
            .collect();
        for out in &self.outputs {
            let (flag, arg) = match out {
                Output::File { flag, path } => (flag, path),
                Output::Dir { flag, dir, .. } => (flag, dir),
            };
            for (target, folder) in output_files(out) {
                for (in_flag, in_arg, file) in &inputs {
                    if let Some(via) = same_file(&target, file) {
                        return Err(Box::new(ClobberError {
                            output_flag: flag.clone(),
                            output_arg: arg.clone(),
                            output: target,
                            input_flag: in_flag.to_string(),
                            // The input as given when it is a file; the file inside when it is a folder.
                            input: if in_arg.is_dir() {
                                file.clone()
                            } else {
                                in_arg.to_path_buf()
                            },
                            via,
                            folder,
                        }));
                    }
                }
            }
        }
        for dir in self.output_dirs() {
            atomic::remove_stale_temps(&dir);
        }
        Ok(())
    }

    /// The existing directories the outputs go to (the parents of output files, output directories and
    /// the folders named in them).
    fn output_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for out in &self.outputs {
            match out {
                Output::File { path, .. } if !is_stdio(path) => {
                    dirs.push(match path.parent() {
                        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                        _ => PathBuf::from("."),
                    });
                }
                Output::File { .. } => {}
                Output::Dir { dir, names, .. } => {
                    dirs.push(dir.clone());
                    for n in names.iter().filter(|n| n.ends_with('/')) {
                        walk_dirs(&dir.join(n.trim_end_matches('/')), &mut dirs, 0);
                    }
                }
            }
        }
        dirs.retain(|d| d.is_dir());
        dirs.dedup();
        dirs
    }
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The files an input stands for: itself, or the files directly inside a directory; none for `-` or a
/// path that does not exist (the command reports that itself).
fn input_files(path: &Path) -> Vec<PathBuf> {
    if is_stdio(path) {
        return Vec::new();
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Ok(_) => vec![path.to_path_buf()],
        Err(_) => Vec::new(),
    }
}

/// The existing files an output would replace, each with the folder it lies in when it is there only as a
/// file of a folder the command fills.
fn output_files(out: &Output) -> Vec<(PathBuf, Option<PathBuf>)> {
    match out {
        Output::File { path, .. } if is_stdio(path) => Vec::new(),
        Output::File { path, .. } => exists(path)
            .then(|| (path.clone(), None))
            .into_iter()
            .collect(),
        Output::Dir { dir, names, .. } => {
            let mut files = Vec::new();
            for name in names {
                if let Some(sub) = name.strip_suffix('/') {
                    let folder = dir.join(sub);
                    let mut in_folder = Vec::new();
                    walk_files(&folder, &mut in_folder, 0);
                    files.extend(in_folder.into_iter().map(|f| (f, Some(folder.clone()))));
                } else if name.contains('*') {
                    let p = dir.join(name);
                    let (Some(parent), Some(pattern)) = (p.parent(), p.file_name()) else {
                        continue;
                    };
                    let pattern = pattern.to_string_lossy();
                    let parent = if parent.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        parent
                    };
                    for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
                        if matches(&pattern, &e.file_name().to_string_lossy()) {
                            files.push((e.path(), None));
                        }
                    }
                } else {
                    let p = dir.join(name);
                    if exists(&p) {
                        files.push((p, None));
                    }
                }
            }
            files
        }
    }
}

fn exists(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| !m.is_dir())
}

/// How deep [`walk_files`] and [`walk_dirs`] go (a run's `LOG/TRAIN/` is two levels).
const MAX_DEPTH: usize = 8;

fn walk_files(dir: &Path, files: &mut Vec<PathBuf>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk_files(&p, files, depth + 1),
            Ok(_) => files.push(p),
            Err(_) => {}
        }
    }
}

fn walk_dirs(dir: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
    if depth > MAX_DEPTH || !dir.is_dir() {
        return;
    }
    dirs.push(dir.to_path_buf());
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk_dirs(&e.path(), dirs, depth + 1);
        }
    }
}

/// `name` matches `pattern`, where one `*` stands for any text (a pattern without `*` is the name).
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
        None => pattern == name,
    }
}

/// How `a` and `b` are the same existing file, if they are.
pub fn same_file(a: &Path, b: &Path) -> Option<Via> {
    let (ca, cb) = (
        std::fs::canonicalize(a).ok()?,
        std::fs::canonicalize(b).ok()?,
    );
    if ca == cb {
        return Some(if absolute(a) == absolute(b) {
            Via::SamePath
        } else {
            Via::Link
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (ma, mb) = (std::fs::metadata(a).ok()?, std::fs::metadata(b).ok()?);
        if ma.dev() == mb.dev() && ma.ino() == mb.ino() {
            return Some(Via::HardLink);
        }
    }
    None
}

/// `p` made absolute, with `.` and `..` resolved by the text alone (links are [`std::fs::canonicalize`]'s
/// business): two spellings of one path compare equal.
fn absolute(p: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("calibration-*.png", "calibration-ece.png"));
        assert!(!matches("calibration-*.png", "calibration.png"));
        assert!(matches("a.txt", "a.txt"));
        assert!(!matches("a.txt", "b.txt"));
    }

    #[test]
    fn same_file_kinds() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.txt");
        std::fs::write(&a, b"x").unwrap();
        let b = d.path().join("b.txt");
        std::fs::write(&b, b"x").unwrap();
        assert_eq!(same_file(&a, &a), Some(Via::SamePath));
        let sub = d.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(
            same_file(&a, &sub.join("..").join("a.txt")),
            Some(Via::SamePath)
        );
        assert_eq!(same_file(&a, &b), None);
        assert_eq!(same_file(&a, &d.path().join("missing")), None);
        #[cfg(unix)]
        {
            let l = d.path().join("l.txt");
            std::os::unix::fs::symlink(&a, &l).unwrap();
            assert_eq!(same_file(&l, &a), Some(Via::Link));
            let h = d.path().join("h.txt");
            std::fs::hard_link(&a, &h).unwrap();
            assert_eq!(same_file(&h, &a), Some(Via::HardLink));
        }
    }

    #[test]
    fn dir_outputs_and_stdio() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir_all(out.join("models")).unwrap();
        let inp = out.join("models").join("m.pt");
        std::fs::write(&inp, b"m").unwrap();
        let e = Io::new()
            .input("-m", &inp)
            .output_dir("-o", &out, ["run.json", "models/"])
            .check()
            .unwrap_err();
        assert_eq!(e.input_flag, "-m");
        assert_eq!(e.output, inp);
        assert!(e.to_string().contains("-o "), "{e}");
        Io::new()
            .input("-I", "-")
            .output("-O", "-")
            .input("-A", &inp)
            .output("-O", d.path().join("new.vcf"))
            .output_dir("-o", &out, ["run.json"])
            .check()
            .unwrap();
        // A directory input stands for its files.
        let e = Io::new()
            .input("-m", out.join("models"))
            .output("-O", &inp)
            .check()
            .unwrap_err();
        assert_eq!(e.input, inp);
        assert_eq!(e.via, Via::SamePath);
    }
}
