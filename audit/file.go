package audit

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// fileSink is one replica's JSONL file. Each event is one write(2) of a whole line; a line that
// would pass maxBytes first rotates the file: it is renamed to FILE.000001, FILE.000002, ...
// (ascending: the highest number is the newest rotated file) and a new FILE is started. A line
// is never split across files. The Log's lock serializes writes and rotation.
type fileSink struct {
	path     string
	maxBytes int64
	keep     int
	sync     bool
	logger   *slog.Logger

	f       *os.File
	size    int64
	last    string // hash of the last event in the file set: the next replica_prev_hash
	nextSeq int    // number of the next rotated file
}

func openFileSink(path string, maxBytes int64, keep int, sync bool, logger *slog.Logger) (*fileSink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create directory of %s: %w", path, err)
	}
	s := &fileSink{path: path, maxBytes: maxBytes, keep: keep, sync: sync, logger: logger}
	rotated, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	s.nextSeq = 1
	if n := len(rotated); n > 0 {
		s.nextSeq = rotated[n-1].seq + 1
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	// Resume the chain from the newest event in the file set.
	s.last = Genesis
	candidates := []string{path}
	for i := len(rotated) - 1; i >= 0; i-- {
		candidates = append(candidates, rotated[i].path)
	}
	for _, p := range candidates {
		h, err := lastLineHash(p)
		if err != nil {
			s.f.Close()
			return nil, err
		}
		if h != "" {
			s.last = h
			break
		}
	}
	return s, nil
}

// open opens (or creates) the live file, setting aside a torn last line.
func (s *fileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", s.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: stat %s: %w", s.path, err)
	}
	s.f, s.size = f, st.Size()
	if s.size > 0 {
		if err := s.setAsideTornTail(); err != nil {
			f.Close()
			return err
		}
	}
	return nil
}

// setAsideTornTail handles a last line without its newline. Record writes a whole line per
// write(2), so this happens only after a power loss without FileSync: the partial line was
// never acknowledged. It is copied to FILE.torn-<time> (kept as evidence) and cut from the file
// so that the chain continues from the last complete event.
func (s *fileSink) setAsideTornTail() error {
	r, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer r.Close()
	var last [1]byte
	if _, err := r.ReadAt(last[:], s.size-1); err != nil {
		return fmt.Errorf("audit: read %s: %w", s.path, err)
	}
	if last[0] == '\n' {
		return nil
	}
	start, err := lastLineStart(r, s.size)
	if err != nil {
		return err
	}
	torn := make([]byte, s.size-start)
	if _, err := r.ReadAt(torn, start); err != nil {
		return fmt.Errorf("audit: read %s: %w", s.path, err)
	}
	aside := fmt.Sprintf("%s.torn-%d", s.path, time.Now().UnixNano())
	if err := os.WriteFile(aside, torn, 0o600); err != nil {
		return fmt.Errorf("audit: set aside torn line of %s: %w", s.path, err)
	}
	if err := s.f.Truncate(start); err != nil {
		return fmt.Errorf("audit: truncate torn line of %s: %w", s.path, err)
	}
	s.logger.Warn("audit: the file ended in an incomplete line (power loss?); set it aside",
		"file", s.path, "bytes", len(torn), "moved_to", aside)
	s.size = start
	return nil
}

// fits reports whether n bytes can be written at once without rotating first.
func (s *fileSink) fits(n int) bool {
	return s.f != nil && (s.size == 0 || s.size+int64(n) <= s.maxBytes)
}

// write appends one line (with its newline) whose event hash is hash.
func (s *fileSink) write(line []byte, hash string) error {
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	if s.size > 0 && s.size+int64(len(line)) > s.maxBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	n, err := s.f.Write(line)
	if err != nil {
		if n > 0 {
			// Never leave half a line: cut back to the last complete one.
			_ = s.f.Truncate(s.size)
		}
		return err
	}
	s.size += int64(n)
	if s.sync {
		if err := s.f.Sync(); err != nil {
			return err
		}
	}
	s.last = hash
	return nil
}

func (s *fileSink) rotate() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("audit: sync before rotation: %w", err)
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("audit: close before rotation: %w", err)
	}
	s.f = nil
	dst := rotatedName(s.path, s.nextSeq)
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("audit: rotate %s: %s already exists", s.path, dst)
	}
	if err := os.Rename(s.path, dst); err != nil {
		return fmt.Errorf("audit: rotate %s: %w", s.path, err)
	}
	s.nextSeq++
	if err := s.open(); err != nil {
		return err
	}
	if s.keep > 0 {
		rotated, err := rotatedFiles(s.path)
		if err == nil && len(rotated) > s.keep {
			for _, r := range rotated[:len(rotated)-s.keep] {
				if err := os.Remove(r.path); err != nil {
					s.logger.Warn("audit: remove old rotated file", "file", r.path, "error", err)
				}
			}
		}
	}
	return nil
}

func (s *fileSink) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	return err
}

func rotatedName(path string, seq int) string { return fmt.Sprintf("%s.%06d", path, seq) }

type rotatedFile struct {
	path string
	seq  int
}

// rotatedFiles lists FILE.<number> files, oldest first.
func rotatedFiles(path string) ([]rotatedFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("audit: list %s: %w", dir, err)
	}
	var out []rotatedFile
	for _, e := range entries {
		name := e.Name()
		suffix, ok := strings.CutPrefix(name, base+".")
		if !ok || suffix == "" || e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n <= 0 || strings.TrimLeft(suffix, "0123456789") != "" {
			continue
		}
		out = append(out, rotatedFile{path: filepath.Join(dir, name), seq: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, nil
}

// FileSet returns the files of a rotated set in chain order: FILE.000001, FILE.000002, ...,
// then FILE itself (when it exists). A path that is itself a rotated file is returned alone.
func FileSet(path string) ([]string, error) {
	rotated, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rotated)+1)
	for _, r := range rotated {
		out = append(out, r.path)
	}
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	} else if len(out) == 0 {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return out, nil
}

// lastLineHash returns the hash of the last complete line of a file ("" if none).
func lastLineHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return "", nil
		}
		return "", fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	end := st.Size()
	// skip a torn tail and the final newline
	for end > 0 {
		var c [1]byte
		if _, err := f.ReadAt(c[:], end-1); err != nil {
			return "", fmt.Errorf("audit: read %s: %w", path, err)
		}
		if c[0] == '\n' {
			break
		}
		end--
	}
	if end == 0 {
		return "", nil
	}
	start, err := lastLineStart(f, end-1)
	if err != nil {
		return "", err
	}
	line := make([]byte, end-1-start)
	if _, err := f.ReadAt(line, start); err != nil {
		return "", fmt.Errorf("audit: read %s: %w", path, err)
	}
	h := lineHash(line)
	if h == "" {
		return "", fmt.Errorf("audit: the last line of %s has no hash; check it with 'airlock audit verify'", path)
	}
	return h, nil
}

// lastLineStart returns the offset where the line ending at end (exclusive) starts.
func lastLineStart(r io.ReaderAt, end int64) (int64, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	pos := end
	for pos > 0 {
		n := int64(chunk)
		if pos < n {
			n = pos
		}
		if _, err := r.ReadAt(buf[:n], pos-n); err != nil && err != io.EOF {
			return 0, fmt.Errorf("audit: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return pos - n + int64(i) + 1, nil
		}
		pos -= n
	}
	return 0, nil
}
