//! Trees and blobs for the history scan, read straight from the repository's pack files through one cache
//! of resolved objects shared by all scanning threads: a slot per pack entry.
//!
//! Why not gix's own object reading: its delta-base cache keeps only the results of delta resolution, never
//! a full (undeltified) object, so every read of a delta whose chain ends at a full object inflates that
//! object again — on the benchmark histories that was most of the zlib time, itself about two fifths of a
//! scan. Here every entry on a chain (the full base, each intermediate delta result) is kept as it is
//! resolved, so an entry is inflated about once while the cache holds it. Why a slot per entry rather than
//! a map: finding an object is then two reads of the id table and one of its slot, where a map keyed by pack
//! offset, behind one lock, cost a tenth of a scan in cache misses and contention. Objects in no pack (loose
//! objects, alternates) are read through gix.

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gix::ObjectId;
use gix::objs::Kind;
use gix::odb::pack::Bundle;
use gix::odb::pack::data::entry::Header;
use libdeflater::Decompressor;

/// Why an object could not be read from a pack.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OdbError {
    #[error("pack {pack}: {message}")]
    Pack { pack: String, message: String },
    #[error("object {0}: delta base not found")]
    MissingBase(ObjectId),
    #[error("object {0}: delta chain too deep (a cycle in the pack?)")]
    TooDeep(ObjectId),
}

/// A resolved object: its kind and its bytes, inflated or delta-applied in place in the shared buffer (one
/// allocation, the bytes beside the reference counts).
#[derive(Clone)]
pub(crate) struct Object {
    pub kind: Kind,
    pub data: Arc<[u8]>,
}

/// Objects up to this size are built in place in their shared buffer; larger ones (rare) are built in a
/// vector whose allocation may fail without aborting (a corrupt size), then copied once.
const IN_PLACE_LIMIT: usize = 64 << 20;

/// A shared buffer of `size` zero bytes, still unique so that it can be written; `None` if it cannot be
/// allocated.
fn shared_buffer(size: usize) -> Option<Arc<[u8]>> {
    if size <= IN_PLACE_LIMIT {
        // An iterator of known length is collected into one allocation, written in place.
        Some(std::iter::repeat_n(0u8, size).collect())
    } else {
        let mut v = Vec::new();
        v.try_reserve_exact(size).ok()?;
        v.resize(size, 0);
        Some(Arc::from(v))
    }
}

/// One pack: its data, where each id's entry is, and a cache slot per entry (both in index order).
struct Pack {
    bundle: Bundle,
    ids: IdTable,
    offsets: OffsetTable,
    slots: Vec<Mutex<Option<Object>>>,
}

/// An entry of one pack: the pack's number and the entry's position in its index.
#[derive(Clone, Copy)]
struct Entry {
    pack: usize,
    position: usize,
}

/// The packs of one repository and the shared cache; `Sync`, one per scan.
pub(crate) struct Packs {
    packs: Vec<Pack>,
    /// Bytes the slots hold, and the most they may.
    cached_bytes: AtomicUsize,
    budget: usize,
    /// Set while one thread empties every slot (the budget was reached).
    evicting: AtomicBool,
}

/// Delta chains deeper than this are treated as corrupt (git's own limit is 4095; `git gc` writes 50).
const MAX_DEPTH: usize = 10_000;

impl Packs {
    /// Opens every pack of the object directory `objects` (packs that fail to open are left to gix) with a
    /// cache of about `cache_bytes` of resolved objects.
    pub(crate) fn open(objects: &Path, object_hash: gix::hash::Kind, cache_bytes: usize) -> Self {
        let mut idx: Vec<_> = std::fs::read_dir(objects.join("pack"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "idx"))
            .collect();
        idx.sort();
        let packs = idx
            .iter()
            .filter_map(|p| Bundle::at(p, object_hash).ok())
            .map(|bundle| {
                let ids = IdTable::new(&bundle.index);
                let offsets = OffsetTable::new(&ids, bundle.pack.pack_end() as u64);
                let slots = (0..ids.entries.len()).map(|_| Mutex::new(None)).collect();
                Pack {
                    bundle,
                    ids,
                    offsets,
                    slots,
                }
            })
            .collect();
        Self {
            packs,
            cached_bytes: AtomicUsize::new(0),
            budget: cache_bytes,
            evicting: AtomicBool::new(false),
        }
    }

    fn locate(&self, id: &gix::oid) -> Option<Entry> {
        self.packs.iter().enumerate().find_map(|(pack, p)| {
            Some(Entry {
                pack,
                position: p.ids.find(id)?,
            })
        })
    }

    fn cached(&self, at: Entry) -> Option<Object> {
        self.packs[at.pack].slots[at.position].lock().ok()?.clone()
    }

    fn remember(&self, at: Entry, object: &Object) {
        let Ok(mut slot) = self.packs[at.pack].slots[at.position].lock() else {
            return;
        };
        if slot.is_none() {
            *slot = Some(object.clone());
            drop(slot);
            let bytes = object.data.len() + 64;
            if self.cached_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > self.budget {
                self.evict();
            }
        }
    }

    /// Empties every slot once the budget is reached: a scan walks history in time order, so what it needs
    /// next is mostly what it reads next, and the cache refills with it.
    fn evict(&self) {
        if self.evicting.swap(true, Ordering::Acquire) {
            return;
        }
        for slot in self.packs.iter().flat_map(|p| &p.slots) {
            if let Ok(mut s) = slot.lock() {
                s.take();
            }
        }
        self.cached_bytes.store(0, Ordering::Relaxed);
        self.evicting.store(false, Ordering::Release);
    }

    fn pack_error(&self, pack: usize, e: impl std::fmt::Display) -> OdbError {
        OdbError::Pack {
            pack: self
                .packs
                .get(pack)
                .map(|p| p.bundle.pack.path().display().to_string())
                .unwrap_or_default(),
            message: e.to_string(),
        }
    }

    /// The object at `at`, resolving its delta chain down to a cached or full object.
    fn resolve(
        &self,
        id: &gix::oid,
        at: Entry,
        inflate: &mut Inflaters,
        depth: usize,
    ) -> Result<Object, OdbError> {
        if let Some(o) = self.cached(at) {
            return Ok(o);
        }
        let pack = &self.packs[at.pack];
        let data = &pack.bundle.pack;
        let read = |position: usize| {
            data.entry(pack.ids.entries[position].1)
                .map_err(|e| self.pack_error(at.pack, e))
        };
        let mut chain = Vec::new();
        let mut cursor = (read(at.position)?, at.position);
        let mut base = loop {
            if chain.len() + depth > MAX_DEPTH {
                return Err(OdbError::TooDeep(id.to_owned()));
            }
            match cursor.0.header {
                Header::OfsDelta { base_distance } => {
                    let position = cursor
                        .0
                        .checked_base_pack_offset(base_distance)
                        .and_then(|offset| pack.offsets.find(offset))
                        .ok_or_else(|| self.pack_error(at.pack, "delta base is not an entry"))?;
                    chain.push(cursor);
                    let base = Entry {
                        pack: at.pack,
                        position,
                    };
                    if let Some(o) = self.cached(base) {
                        break o;
                    }
                    cursor = (read(position)?, position);
                }
                Header::RefDelta { base_id } => {
                    chain.push(cursor);
                    let Some(base) = self.locate(&base_id) else {
                        return Err(OdbError::MissingBase(id.to_owned()));
                    };
                    break self.resolve(&base_id, base, inflate, depth + chain.len())?;
                }
                header => {
                    let kind = header
                        .as_kind()
                        .ok_or_else(|| self.pack_error(at.pack, "unknown entry type"))?;
                    let o = Object {
                        kind,
                        data: self.inflate(at.pack, &cursor.0, inflate)?,
                    };
                    self.remember(
                        Entry {
                            pack: at.pack,
                            position: cursor.1,
                        },
                        &o,
                    );
                    break o;
                }
            }
        };
        let mut delta = std::mem::take(&mut inflate.delta);
        for (entry, position) in chain.iter().rev() {
            self.inflate_delta(at.pack, entry, inflate, &mut delta)?;
            let data = apply_delta(&base.data, &delta).map_err(|e| self.pack_error(at.pack, e))?;
            base = Object {
                kind: base.kind,
                data,
            };
            self.remember(
                Entry {
                    pack: at.pack,
                    position: *position,
                },
                &base,
            );
        }
        inflate.delta = delta;
        Ok(base)
    }

    /// Inflates a delta entry into `out`, a buffer reused for every delta of a thread.
    fn inflate_delta(
        &self,
        pack_no: usize,
        entry: &gix::odb::pack::data::Entry,
        inflate: &mut Inflaters,
        out: &mut Vec<u8>,
    ) -> Result<(), OdbError> {
        let size = self.inflated_size(pack_no, entry)?;
        out.clear();
        // A corrupt size must not abort the process on allocation.
        out.try_reserve(size)
            .map_err(|_| self.pack_error(pack_no, "entry too large"))?;
        out.resize(size, 0);
        self.inflate_into(pack_no, entry, inflate, out)
    }

    fn inflated_size(
        &self,
        pack_no: usize,
        entry: &gix::odb::pack::data::Entry,
    ) -> Result<usize, OdbError> {
        usize::try_from(entry.decompressed_size)
            .map_err(|_| self.pack_error(pack_no, "entry too large"))
    }

    /// Inflates a full entry into a new shared buffer.
    fn inflate(
        &self,
        pack_no: usize,
        entry: &gix::odb::pack::data::Entry,
        inflate: &mut Inflaters,
    ) -> Result<Arc<[u8]>, OdbError> {
        let size = self.inflated_size(pack_no, entry)?;
        let mut data =
            shared_buffer(size).ok_or_else(|| self.pack_error(pack_no, "entry too large"))?;
        let out = Arc::get_mut(&mut data)
            .ok_or_else(|| self.pack_error(pack_no, "a new buffer is shared"))?;
        self.inflate_into(pack_no, entry, inflate, out)?;
        Ok(data)
    }

    /// Inflates one entry with libdeflate: its whole-buffer decoder needs the output size, which the entry
    /// header gives, and decodes small streams markedly faster than a streaming zlib (most of a pack's
    /// entries are small deltas, whose cost is mostly setting up Huffman tables).
    /// `out` is the entry's inflated size.
    fn inflate_into(
        &self,
        pack_no: usize,
        entry: &gix::odb::pack::data::Entry,
        inflate: &mut Inflaters,
        out: &mut [u8],
    ) -> Result<(), OdbError> {
        let pack = &self.packs[pack_no].bundle.pack;
        let size = out.len();
        // The stream runs from the entry's data to at most the pack's end; the decoder stops where it ends.
        let input = pack
            .entry_slice(entry.data_offset..pack.pack_end() as u64)
            .ok_or_else(|| self.pack_error(pack_no, "entry data beyond the pack end"))?;
        let decompressor = if size < SMALL_ENTRY {
            &mut inflate.small
        } else {
            &mut inflate.large
        };
        match decompressor.zlib_decompress(input, out) {
            Ok(n) if n == size => Ok(()),
            Ok(_) => Err(self.pack_error(
                pack_no,
                format!(
                    "entry at {}: inflated size differs from its header",
                    entry.pack_offset()
                ),
            )),
            Err(e) => {
                Err(self.pack_error(pack_no, format!("entry at {}: {e}", entry.pack_offset())))
            }
        }
    }
}

/// Entries smaller than this, inflated, go to their own decoder (see [`Inflaters`]).
const SMALL_ENTRY: usize = 512;

/// One thread's decoders, one for small entries and one for the rest. zlib writes most small entries (tree
/// deltas, small trees: nine in ten on the benchmark history) stored or with its fixed Huffman codes, and
/// blobs with codes of their own; libdeflate keeps the fixed codes' tables only until a stream with its own
/// codes comes through, so a single decoder rebuilt them after every blob.
pub(crate) struct Inflaters {
    small: Decompressor,
    large: Decompressor,
    /// The inflated delta being applied.
    delta: Vec<u8>,
}

impl Inflaters {
    fn new() -> Self {
        Self {
            small: Decompressor::new(),
            large: Decompressor::new(),
            delta: Vec::new(),
        }
    }
}

/// The first eight bytes of an object id (ids are 20 or 32 bytes) as a number that sorts like the id.
fn key(bytes: &[u8]) -> u64 {
    bytes
        .first_chunk::<8>()
        .map_or(0, |w| u64::from_be_bytes(*w))
}

/// For keys spread evenly over `0..=max`, the shift that leaves about one bucket per entry of `n`.
fn bucket_shift(n: usize, max: u64) -> u32 {
    let bits = (n as u64).next_power_of_two().trailing_zeros().max(1);
    (64 - max.leading_zeros()).saturating_sub(bits)
}

/// Sorted keys in buckets by their top bits: `buckets[b]..buckets[b + 1]` are the keys whose value
/// shifted right by `shift` is `b`. With about one bucket per key, evenly spread keys are found in about
/// two memory reads (the bucket bounds, then the key).
struct Buckets {
    bounds: Vec<u32>,
    shift: u32,
}

impl Buckets {
    fn new(sorted_keys: impl Iterator<Item = u64>, n: usize, shift: u32) -> Self {
        let mut bounds = Vec::with_capacity(n + 2);
        let mut count = 0u32;
        for k in sorted_keys {
            let bucket = (k >> shift) as usize;
            // Open every bucket up to this key's (empty buckets start and end here).
            while bounds.len() <= bucket {
                bounds.push(count);
            }
            count += 1;
        }
        bounds.push(count);
        Self { bounds, shift }
    }

    /// The positions of the keys that may equal `k`.
    fn range(&self, k: u64) -> std::ops::Range<usize> {
        let bucket = usize::try_from(k >> self.shift).unwrap_or(usize::MAX);
        let end = self.bounds.len() - 1;
        let from = self.bounds.get(bucket.min(end)).copied().unwrap_or(0) as usize;
        let to = self
            .bounds
            .get(bucket.saturating_add(1).min(end))
            .copied()
            .unwrap_or(0) as usize;
        from..to
    }
}

/// One pack's ids and entry offsets, in index (id) order. Object ids are uniformly spread, so an id is
/// found in about two memory reads. (An interpolation search over the index took four or five cache misses
/// per lookup: its probes, then the index's id and offset tables.)
struct IdTable {
    entries: Vec<(ObjectId, u64)>,
    buckets: Buckets,
}

impl IdTable {
    fn new(index: &gix::odb::pack::index::File) -> Self {
        let n = index.num_objects();
        let entries: Vec<(ObjectId, u64)> = (0..n)
            .map(|i| {
                (
                    index.oid_at_index(i).to_owned(),
                    index.pack_offset_at_index(i),
                )
            })
            .collect();
        let shift = bucket_shift(entries.len(), u64::MAX);
        let buckets = Buckets::new(
            entries.iter().map(|(id, _)| key(id.as_bytes())),
            entries.len(),
            shift,
        );
        Self { entries, buckets }
    }

    /// The index position of `id`, if this pack has it.
    fn find(&self, id: &gix::oid) -> Option<usize> {
        let range = self.buckets.range(key(id.as_bytes()));
        let from = range.start;
        self.entries
            .get(range)?
            .iter()
            .position(|(candidate, _)| candidate.as_ref() == id)
            .map(|i| from + i)
    }
}

/// One pack's entry offsets in pack order, with each entry's index position: how an offset delta's base
/// (given by its offset) finds its cache slot.
struct OffsetTable {
    by_offset: Vec<(u64, u32)>,
    buckets: Buckets,
}

impl OffsetTable {
    fn new(ids: &IdTable, pack_end: u64) -> Self {
        let mut by_offset: Vec<(u64, u32)> = ids
            .entries
            .iter()
            .enumerate()
            .map(|(position, &(_, offset))| (offset, position as u32))
            .collect();
        by_offset.sort_unstable_by_key(|&(offset, _)| offset);
        let shift = bucket_shift(by_offset.len(), pack_end);
        let buckets = Buckets::new(
            by_offset.iter().map(|&(offset, _)| offset),
            by_offset.len(),
            shift,
        );
        Self { by_offset, buckets }
    }

    /// The index position of the entry at `offset`, if an entry starts there.
    fn find(&self, offset: u64) -> Option<usize> {
        self.by_offset
            .get(self.buckets.range(offset))?
            .iter()
            .find(|&&(o, _)| o == offset)
            .map(|&(_, position)| position as usize)
    }
}

/// Applies a git delta (`base size`, `result size`, then copy and insert instructions) to `base`.
fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Arc<[u8]>, &'static str> {
    fn varint(d: &[u8], at: &mut usize) -> Result<usize, &'static str> {
        let mut value = 0usize;
        let mut shift = 0;
        loop {
            let b = *d.get(*at).ok_or("truncated delta header")?;
            *at += 1;
            if shift > 56 {
                return Err("delta size too large");
            }
            value |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
    }
    let mut at = 0;
    if varint(delta, &mut at)? != base.len() {
        return Err("delta base size does not match its base");
    }
    let size = varint(delta, &mut at)?;
    let mut result = shared_buffer(size).ok_or("delta result too large")?;
    let out = Arc::get_mut(&mut result).ok_or("a new buffer is shared")?;
    let mut written = 0;
    let mut write = |from: &[u8]| -> Result<(), &'static str> {
        out.get_mut(written..written + from.len())
            .ok_or("delta result size does not match its header")?
            .copy_from_slice(from);
        written += from.len();
        Ok(())
    };
    while at < delta.len() {
        let op = delta[at];
        at += 1;
        if op & 0x80 != 0 {
            // Copy from the base: offset and size bytes present as the low seven bits say.
            let mut field = [0usize; 7];
            for (bit, slot) in field.iter_mut().enumerate() {
                if op & (1 << bit) != 0 {
                    *slot = *delta.get(at).ok_or("truncated delta copy")? as usize;
                    at += 1;
                }
            }
            let offset = field[0] | field[1] << 8 | field[2] << 16 | field[3] << 24;
            let mut len = field[4] | field[5] << 8 | field[6] << 16;
            if len == 0 {
                len = 0x10000;
            }
            let from = base
                .get(offset..offset.checked_add(len).ok_or("delta copy out of range")?)
                .ok_or("delta copy out of range")?;
            write(from)?;
        } else if op != 0 {
            let from = delta
                .get(at..at + op as usize)
                .ok_or("truncated delta insert")?;
            write(from)?;
            at += op as usize;
        } else {
            return Err("reserved delta instruction 0");
        }
    }
    if written != size {
        return Err("delta result size does not match its header");
    }
    Ok(result)
}

/// One thread's view: the shared packs, gix for objects in no pack, and this thread's inflate state.
pub(crate) struct Reader<'a> {
    packs: &'a Packs,
    repo: &'a gix::Repository,
    inflate: RefCell<Inflaters>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(packs: &'a Packs, repo: &'a gix::Repository) -> Self {
        Self {
            packs,
            repo,
            inflate: RefCell::new(Inflaters::new()),
        }
    }

    /// The object `id`, from a pack or else through gix; `None` when the repository lacks it.
    pub(crate) fn object(&self, id: &gix::oid) -> Result<Option<Object>, gix::Error> {
        if let Some(at) = self.packs.locate(id) {
            let mut inflate = self
                .inflate
                .try_borrow_mut()
                .map_err(gix::Error::from_error)?;
            return self
                .packs
                .resolve(id, at, &mut inflate, 0)
                .map(Some)
                .map_err(gix::Error::from_error);
        }
        let mut buf = Vec::new();
        Ok(
            gix::objs::Find::try_find(&self.repo.objects, id, &mut buf)?.map(|d| Object {
                kind: d.kind,
                data: Arc::from(d.data),
            }),
        )
    }
}

impl gix::objs::Find for Reader<'_> {
    fn try_find<'b>(
        &self,
        id: &gix::oid,
        buffer: &'b mut Vec<u8>,
    ) -> Result<Option<gix::objs::Data<'b>>, gix::Error> {
        let Some(o) = self.object(id)? else {
            return Ok(None);
        };
        buffer.clear();
        buffer.extend_from_slice(&o.data);
        Ok(Some(gix::objs::Data {
            kind: o.kind,
            object_hash: id.kind(),
            data: buffer,
        }))
    }
}

impl gix::objs::FindHeader for Reader<'_> {
    fn try_header(&self, id: &gix::oid) -> Result<Option<gix::objs::Header>, gix::Error> {
        Ok(self.object(id)?.map(|o| gix::objs::Header {
            kind: o.kind,
            size: o.data.len() as u64,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::{IdTable, OffsetTable, Packs, Reader, apply_delta};

    #[test]
    fn the_id_table_finds_every_id_of_an_index_at_its_offset_and_no_other() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let git = |args: &[&str]| crate::testdata::git(dir.path(), args);
        git(&["init", "-q"]);
        for i in 0..400 {
            std::fs::write(dir.path().join(format!("f{i}")), format!("{i}\n")).expect("write");
        }
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "many objects"]);
        git(&["gc", "-q"]);
        let pack_dir = dir.path().join(".git/objects/pack");
        let idx = std::fs::read_dir(&pack_dir)
            .expect("pack directory")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "idx"))
            .expect("an index");
        let index = gix::odb::pack::index::File::at(&idx, gix::hash::Kind::Sha1).expect("index");
        assert!(index.num_objects() > 400);
        let table = IdTable::new(&index);
        let offsets = OffsetTable::new(&table, u64::from(u32::MAX));
        let position_of = |id: gix::ObjectId| index.lookup(id).map(|i| i as usize);
        for i in 0..index.num_objects() {
            let id = index.oid_at_index(i).to_owned();
            assert_eq!(table.find(&id), Some(i as usize), "{id}");
            let offset = index.pack_offset_at_index(i);
            assert_eq!(offsets.find(offset), Some(i as usize), "{id} at {offset}");
            assert_eq!(offsets.find(offset + 1), None, "{id} at {offset} + 1");
            // Neighbours that differ in the last byte, or in the first, are absent.
            for at in [19, 0] {
                let mut bytes = id.as_bytes().to_vec();
                bytes[at] ^= 1;
                let near = gix::ObjectId::from_bytes_or_panic(&bytes);
                assert_eq!(table.find(&near), position_of(near), "{near}");
            }
        }
        for edge in [[0u8; 20], [0xff; 20]] {
            let id = gix::ObjectId::from_bytes_or_panic(&edge);
            assert_eq!(table.find(&id), position_of(id));
        }
    }

    /// Every object of a packed history reads back as git prints it, also when the cache is far too small to
    /// hold a delta chain and keeps emptying itself.
    #[test]
    fn objects_read_back_as_git_has_them_with_a_cache_that_keeps_emptying() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let git = |args: &[&str]| crate::testdata::git(dir.path(), args);
        git(&["init", "-q"]);
        let mut text = String::new();
        for i in 0..60 {
            text.push_str(&format!("line {i}: {}\n", "x".repeat(i % 7 * 10)));
            std::fs::write(dir.path().join("grows.txt"), &text).expect("write");
            git(&["add", "."]);
            git(&["commit", "-q", "-m", &format!("commit {i}")]);
        }
        git(&[
            "repack",
            "-a",
            "-d",
            "-f",
            "-q",
            "--depth=50",
            "--window=50",
        ]);
        let repo = gix::open(dir.path()).expect("repository");
        let packs = Packs::open(
            &dir.path().join(".git/objects"),
            gix::hash::Kind::Sha1,
            2_000,
        );
        assert_eq!(packs.packs.len(), 1, "the premise: one pack");
        let reader = Reader::new(&packs, &repo);
        let listed = String::from_utf8(git(&["rev-list", "--objects", "--all"])).expect("utf-8");
        let mut objects_read = 0;
        for line in listed.lines() {
            let id = gix::ObjectId::from_hex(&line.as_bytes()[..40]).expect("an id");
            let object = reader.object(&id).expect("reads").expect("present");
            let kind = String::from_utf8(git(&["cat-file", "-t", &id.to_string()])).expect("kind");
            assert_eq!(object.kind.as_bytes(), kind.trim().as_bytes(), "{id}");
            let raw = git(&["cat-file", kind.trim(), &id.to_string()]);
            assert_eq!(*object.data, raw, "{id}");
            objects_read += 1;
        }
        assert!(objects_read > 150, "{objects_read}");
        assert!(
            packs
                .cached_bytes
                .load(std::sync::atomic::Ordering::Relaxed)
                <= 2_000 + 4_096,
            "the budget holds"
        );
    }

    #[test]
    fn a_delta_copies_from_its_base_and_inserts_literals() {
        // base 11 bytes, result 9: copy "hello" (offset 0, size 5), insert "!!", copy "ld" (offset 9, size 2).
        let base = b"hello world";
        let delta = [11, 9, 0x90, 5, 2, b'!', b'!', 0x91, 9, 2];
        assert_eq!(apply_delta(base, &delta).as_deref(), Ok(&b"hello!!ld"[..]));
    }

    #[test]
    fn a_malformed_delta_is_an_error_not_a_panic() {
        let base = b"abc";
        assert!(
            apply_delta(base, &[4, 1, 1, b'x']).is_err(),
            "wrong base size"
        );
        assert!(
            apply_delta(base, &[3, 1, 0x91, 2, 5]).is_err(),
            "copy past the end"
        );
        assert!(
            apply_delta(base, &[3, 2, 3, b'x']).is_err(),
            "truncated insert"
        );
        assert!(
            apply_delta(base, &[3, 1, 0]).is_err(),
            "reserved instruction"
        );
        assert!(apply_delta(base, &[3, 2, 1, b'x']).is_err(), "short result");
        assert!(apply_delta(base, &[3]).is_err(), "truncated header");
    }
}
