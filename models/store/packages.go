package store

import "unifi/models/configpkg"

// Packages is the package service (export, import, credentials, templates:
// docs/packages.md) on the Store's database, sealing the secrets it is given
// with the Store's key.
func (s *Store) Packages() *configpkg.Service { return configpkg.New(s.db, s.secrets.seal) }
