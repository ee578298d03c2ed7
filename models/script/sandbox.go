package script

import (
	"fmt"
	"sync"
	"time"

	"github.com/dlclark/regexp2"
	"github.com/dop251/goja"
)

// removedGlobals are taken out of every runtime. goja has no file, network or
// process access of its own (no require, no console, no fetch); these are
// removed because they allocate large buffers in one uninterruptible Go call
// (new Uint8Array(1e9)) and no message script needs binary data.
var removedGlobals = []string{"ArrayBuffer", "SharedArrayBuffer", "DataView", "Int8Array", "Uint8Array",
	"Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "Float32Array",
	"Float64Array", "BigInt64Array", "BigUint64Array", "WeakRef", "FinalizationRegistry"}

// walkingArrayMethods loop over an array's whole length in Go, where an
// interrupt cannot reach them: `new Array(4e9).fill(0)` would run for minutes.
// Each is wrapped with a length check.
var walkingArrayMethods = []string{"join", "fill", "map", "forEach", "filter", "reduce", "reduceRight", "indexOf",
	"lastIndexOf", "includes", "some", "every", "find", "findIndex", "findLast", "findLastIndex", "slice", "splice",
	"concat", "reverse", "sort", "copyWithin", "toString", "toLocaleString", "flat", "flatMap", "toReversed",
	"toSorted", "toSpliced", "with"}

var regexpTimeout sync.Once

// setRegexpTimeout bounds backtracking regular expressions (goja runs the
// ones RE2 cannot, e.g. with back-references, on regexp2, whose matches
// cannot be interrupted): regexp2 reads this default when a pattern compiles.
// Only goja uses regexp2 in this program.
func setRegexpTimeout(d time.Duration) {
	regexpTimeout.Do(func() { regexp2.DefaultMatchTimeout = d })
}

// harden removes and wraps the built-ins that could escape the time limit or
// the memory bound in one native call.
func harden(vm *goja.Runtime, l Limits) error {
	global := vm.GlobalObject()
	for _, name := range removedGlobals {
		if err := global.Delete(name); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	tooLong := func(what string, n int64) {
		panic(vm.NewGoError(fmt.Errorf("%s would be %d long, more than the limit of %d", what, n, l.MaxString)))
	}
	strProto := vm.Get("String").ToObject(vm).Get("prototype").ToObject(vm)
	// repeat, padStart, padEnd: the result's length is known before it is built.
	wrap := func(proto *goja.Object, name string, check func(this goja.Value, args []goja.Value)) error {
		orig, ok := goja.AssertFunction(proto.Get(name))
		if !ok {
			return fmt.Errorf("%s is not a function", name)
		}
		return proto.Set(name, func(call goja.FunctionCall) goja.Value {
			check(call.This, call.Arguments)
			v, err := orig(call.This, call.Arguments...)
			if err != nil {
				panic(err)
			}
			return v
		})
	}
	arg := func(args []goja.Value, i int) goja.Value {
		if i < len(args) {
			return args[i]
		}
		return goja.Undefined()
	}
	if err := wrap(strProto, "repeat", func(this goja.Value, args []goja.Value) {
		n := int64(len(this.String())) * arg(args, 0).ToInteger()
		if n > l.MaxString {
			tooLong("the repeated string", n)
		}
	}); err != nil {
		return err
	}
	for _, name := range []string{"padStart", "padEnd"} {
		if err := wrap(strProto, name, func(this goja.Value, args []goja.Value) {
			if n := arg(args, 0).ToInteger(); n > l.MaxString {
				tooLong("the padded string", n)
			}
		}); err != nil {
			return err
		}
	}
	for _, name := range []string{"replace", "replaceAll"} {
		if err := wrap(strProto, name, func(this goja.Value, args []goja.Value) {
			// Worst case every character is replaced.
			if r, ok := arg(args, 1).Export().(string); ok && len(r) > 1 {
				if n := int64(len(this.String())+1) * int64(len(r)); n > l.MaxString*4 {
					tooLong("the replaced string", n)
				}
			}
		}); err != nil {
			return err
		}
	}
	arrayCtor := vm.Get("Array").ToObject(vm)
	arrProto := arrayCtor.Get("prototype").ToObject(vm)
	lengthOf := func(this goja.Value) int64 {
		if this == nil || goja.IsUndefined(this) || goja.IsNull(this) {
			return 0
		}
		return this.ToObject(vm).Get("length").ToInteger()
	}
	for _, name := range walkingArrayMethods {
		name := name
		if goja.IsUndefined(arrProto.Get(name)) || arrProto.Get(name) == nil {
			continue
		}
		if err := wrap(arrProto, name, func(this goja.Value, args []goja.Value) {
			n := lengthOf(this)
			if n > l.MaxArrayLength {
				panic(vm.NewGoError(fmt.Errorf("Array.prototype.%s on an array of length %d, more than the limit of %d", name, n, l.MaxArrayLength)))
			}
			if name == "join" {
				sep := int64(1)
				if s := arg(args, 0); !goja.IsUndefined(s) {
					sep = int64(len(s.String()))
				}
				if n*sep > l.MaxString {
					tooLong("the joined string", n*sep)
				}
			}
		}); err != nil {
			return err
		}
	}
	// Array.from({length: 4e9}) walks the length in Go too.
	if err := wrap(arrayCtor, "from", func(this goja.Value, args []goja.Value) {
		if n := lengthOf(arg(args, 0)); n > l.MaxArrayLength {
			panic(vm.NewGoError(fmt.Errorf("Array.from of length %d, more than the limit of %d", n, l.MaxArrayLength)))
		}
	}); err != nil {
		return err
	}
	return nil
}
