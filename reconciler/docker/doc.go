// Package docker implements the docker.* resource kinds on the Docker Engine
// API: docker.image, docker.network, docker.volume and docker.container.
//
// Every object fsgit creates carries the label fsgit.managed=true. A
// container also carries fsgit.id (its resource ID) and fsgit.spec-hash, a
// hash of its normalized desired spec in which secret environment values
// are replaced by their references; rotating a secret changes a second,
// salted hash (fsgit.secret-hash), never a value. The container is recreated
// only when the real container differs from the spec: a second apply
// creates, restarts and recreates nothing. A stopped container is started,
// a removed one recreated.
//
// [Container.Watch] follows the Engine's event stream so that a managed
// container that dies or is removed is noticed at once, rate-limited per
// container so that a crash loop cannot spin the reconciler.
//
// Each kind value keeps one Engine API client per daemon address, created
// on first use and reused for every run.
package docker
