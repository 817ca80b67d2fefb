package kandysim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// state is what a persistent simulator keeps: what Kandy itself would
// still know after a restart.
type state struct {
	APIKey    string      `json:"project_api_key"`
	APISecret string      `json:"project_api_secret"`
	Domain    string      `json:"domain"`
	Users     []savedUser `json:"users"`
}

type savedUser struct {
	ID        string `json:"user_id"`
	Password  string `json:"user_password"`
	APIKey    string `json:"user_api_key"`
	APISecret string `json:"user_api_secret"`
	Country   string `json:"user_country_code"`
}

// Open returns a simulator that keeps its project key and users in file,
// written on every change, and resumes from it when it exists. Options
// set what a new file starts with; the quota always comes from them.
func Open(o Options, file string) (*Sim, error) {
	raw, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading the simulator's state: %w", err)
	}
	var st state
	if err == nil {
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		o.APIKey, o.APISecret, o.Domain = st.APIKey, st.APISecret, st.Domain
	}
	s := New(o)
	s.file = file
	for _, u := range st.Users {
		s.users[u.ID] = &user{id: u.ID, password: u.Password, apiKey: u.APIKey, apiSecret: u.APISecret, country: u.Country}
		s.issued = append(s.issued, u.Password, u.APISecret)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s, s.save()
}

// save writes the state if the simulator has a file; the caller holds s.mu.
func (s *Sim) save() error {
	if s.file == "" {
		return nil
	}
	st := state{APIKey: s.apiKey, APISecret: s.apiSecret, Domain: s.domain, Users: []savedUser{}}
	for _, id := range s.sortedIDs() {
		u := s.users[id]
		st.Users = append(st.Users, savedUser{ID: u.id, Password: u.password, APIKey: u.apiKey, APISecret: u.apiSecret, Country: u.country})
	}
	raw, _ := json.MarshalIndent(st, "", "  ")
	tmp, err := os.CreateTemp(filepath.Dir(s.file), ".kandysim-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.file)
}
