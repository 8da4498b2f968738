// Two classical registers with different outcomes: a reads "10", b reads "011"
// (bit 0 of each register on the left, as OQC's service writes them).
OPENQASM 3;
include "stdgates.inc";
qubit[5] q;
bit[2] a;
bit[3] b;
x q[0];
x q[3];
x q[4];
a[0] = measure q[0];
a[1] = measure q[1];
b[0] = measure q[2];
b[1] = measure q[3];
b[2] = measure q[4];
