package ct

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const stateVersion = 1

// logState is what the monitor knows of one log: its last verified signed
// tree head and the compact range of that tree, from which the next root is
// recomputed out of the fetched entries.
type logState struct {
	TreeSize   uint64    `json:"tree_size"`
	Timestamp  uint64    `json:"timestamp"`
	RootHash   []byte    `json:"root_hash"`
	Range      [][]byte  `json:"range"` // compact range [0, TreeSize), left to right
	KeyID      []byte    `json:"key_id"`
	VerifiedAt time.Time `json:"verified_at"`
}

type stateFile struct {
	Version int                  `json:"version"`
	Logs    map[string]*logState `json:"logs"` // by log URL
}

// loadState reads path; a missing file is an empty state, anything else
// unreadable is an error (silently starting over would skip entries).
func loadState(path string) (map[string]*logState, error) {
	st := map[string]*logState{}
	if path == "" {
		return st, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ct: read state: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("ct: state file %s: %w", path, err)
	}
	if f.Version != stateVersion {
		return nil, fmt.Errorf("ct: state file %s: version %d, want %d", path, f.Version, stateVersion)
	}
	for u, ls := range f.Logs {
		if ls == nil || len(ls.RootHash) != 32 {
			return nil, fmt.Errorf("ct: state file %s: log %s: bad root hash", path, u)
		}
		st[u] = ls
	}
	return st, nil
}

// saveState writes the state atomically: a 0600 temporary file in the same
// directory, synced, then renamed over path.
func saveState(path string, logs map[string]*logState) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Logs: logs}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("ct: write state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("ct: write state: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("ct: write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("ct: write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ct: write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("ct: write state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
