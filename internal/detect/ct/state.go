package ct

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/wardengw/warden/internal/pki"
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

// saveState writes the state atomically (pki.WriteFileAtomic), mode 0600.
func saveState(path string, logs map[string]*logState) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Logs: logs}, "", "  ")
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(path, 0o600, append(b, '\n')); err != nil {
		return fmt.Errorf("ct: state: %w", err)
	}
	return nil
}
