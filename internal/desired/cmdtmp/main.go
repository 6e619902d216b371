package main

import (
	"context"
	"fmt"
	"os"
	"encoding/json"

	"github.com/fsgit/fsgit/internal/desired"
)

func main() {
	s, err := desired.LoadDir(context.Background(), os.Args[1])
	if err != nil { fmt.Println("LOAD:", err); os.Exit(1) }
	fmt.Println(s.Name(), s.Nodes(), s.Revision())
	for _, p := range s.Vet(context.Background()) { fmt.Println("VET:", p) }
	if len(os.Args) > 2 {
		c, err := s.Catalog(os.Args[2])
		if err != nil { fmt.Println("CAT:", err); os.Exit(1) }
		b, _ := json.MarshalIndent(c, "", "  ")
		fmt.Println(string(b))
	}
}
