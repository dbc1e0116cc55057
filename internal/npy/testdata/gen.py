# Regenerates the NumPy reference files used by npy_test.go:
#   cd datasets/npy/testdata && python3 gen.py
# Committed output was produced with numpy 1.24.2.
import numpy as np

a = np.arange(6, dtype=np.float32).reshape(2, 3)
np.save("arange_2x3_f4.npy", a)
np.save("arange_2x3_f8.npy", a.astype(np.float64))
np.save("arange_2x3_u1.npy", (a * 40).astype(np.uint8))
np.save("scalar_f4.npy", np.float32(3.5))
np.save("empty_0x3_f4.npy", np.zeros((0, 3), dtype=np.float32))
np.save("vector_f4.npy", np.array([1.0, -2.5, np.inf], dtype=np.float32))
np.save("fortran_2x3_f4.npy", np.asfortranarray(a))
np.save("bigendian_2x3_f4.npy", a.astype(">f4"))
np.save("int64_2x3.npy", a.astype(np.int64))
for v in [(2, 0), (3, 0)]:
    with open("arange_2x3_f4_v%d.npy" % v[0], "wb") as f:
        np.lib.format.write_array(f, a, version=v)
