package models

import "time"

// User is a person (or remote system, for the integration role) who may act.
type User struct {
	ID           int64
	Name         string
	Role         Role
	PasswordHash string  `json:"-"`
	TokenHash    *string `json:"-"`
	SessionEpoch int
	Active       bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Actor is who does an operation, for permission checks and the activity log.
type Actor struct {
	UserID     int64
	Name       string
	Role       Role
	RemoteAddr string
}

// ActorOf returns u as an Actor.
func ActorOf(u *User, remoteAddr string) Actor {
	return Actor{UserID: u.ID, Name: u.Name, Role: u.Role, RemoteAddr: remoteAddr}
}

// SystemActor is the engine acting by itself.
var SystemActor = Actor{Name: "system", Role: RoleAdmin}
