// Package iceberg implements the iceberg.namespace and iceberg.table kinds:
// namespaces and tables of an Apache Iceberg JDBC catalog kept in MariaDB,
// the catalog that Spark's prod_catalog (type jdbc) reads.
//
// This package holds what fsgit needs without iceberg-go: the specs, their
// validation (types and transforms are read with iceberg-go's rules),
// Preview, and the kinds as proxies. A proxy's Plan runs the fsgit-iceberg
// helper ([Executable], built next to fsgit; see [LookPath]) with a JSON
// [Request] on its stdin and reads a JSON [Response]; the plan's Apply runs
// it again with the apply op, which plans again and applies. The secrets
// the resource names are resolved here and travel over the pipe only. The
// implementation on iceberg-go (its SQL catalog, arrow, the S3 FileIO) is
// in package [github.com/fsgit/fsgit/reconciler/iceberg/jdbc], linked only
// into fsgit-iceberg, so that fsgit starts without iceberg-go's init cost.
//
// A table declares its schema (field IDs, names, types, required), its
// partition spec and properties. A missing table is created; a declared new
// optional column is added by schema evolution; a rename, a doc change, a
// widening type promotion (int to long, float to double, decimal precision)
// and making a required column optional are compatible and applied. A change
// Iceberg cannot make compatibly (type narrowing or any other type change, a
// new required column, making an optional column required) is refused with a
// [*RefusedError] that says why and what to do instead. Dropping a column or
// a table is destructive and runs only with allowDestroy.
//
// Observing a catalog needs a login to its database, so the catalog
// password is resolved when planning too; it goes to the helper over its
// stdin and from there to the driver only, never to argv, the environment,
// a plan, a log or an error.
package iceberg
