// Command nnp prints its effective user ID. Installed setuid root in the
// VM lane's stand-in of critest's nonewprivs image, it shows whether the
// container could gain privileges (0) or not (the user it runs as).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
