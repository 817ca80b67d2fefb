package memstore_test

import (
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/internal/accountstest"
	"github.com/kandy-provisioner/kandy-provisioner/internal/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

func TestContract(t *testing.T) {
	accountstest.Contract(t, func(*testing.T) provision.Accounts { return memstore.New() })
}
