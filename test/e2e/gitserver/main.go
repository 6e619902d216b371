// Command gitserver is the fleet's git server (scripts/fleet.sh runs it in a
// container on the fleet's private network): the repositories under -git
// over git's smart HTTP protocol, served by git's own `git http-backend`
// (pushes allowed: the fleet's agents push their status branch), and the
// files under -mirror as a plain file server (the Spark jars' local
// mirror).
package main

import (
	"flag"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"os"
	"strings"

	"github.com/fsgit/fsgit/internal/githttp"
)

func main() {
	addr := flag.String("listen", ":8080", "address to listen on")
	gitRoot := flag.String("git", "/srv/git", "directory of bare repositories, served under /git/")
	mirror := flag.String("mirror", "/srv/mirror", "directory served as is under /mirror/")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	path, err := githttp.Backend()
	if err != nil {
		log.Error("find git-http-backend", "err", err)
		os.Exit(1)
	}
	backend := &cgi.Handler{
		Path: path,
		Root: "/git",
		Env: []string{
			"GIT_PROJECT_ROOT=" + *gitRoot,
			"GIT_HTTP_EXPORT_ALL=1",
			// Anonymous pushes: the status branch. http.receivepack in
			// the repository's config says so too.
			"REMOTE_USER=fleet",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + *gitRoot,
		},
	}
	mux := http.NewServeMux()
	mux.Handle("/git/", backend)
	mux.Handle("/mirror/", http.StripPrefix("/mirror/", http.FileServer(http.Dir(*mirror))))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			log.Info("push", "path", r.URL.Path, "remote", r.RemoteAddr)
		}
		mux.ServeHTTP(w, r)
	})
	log.Info("serving", "listen", *addr, "git", *gitRoot, "mirror", *mirror)
	if err := http.ListenAndServe(*addr, logged); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}
