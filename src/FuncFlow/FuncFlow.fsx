// F# Interactive set-up: loads the built library and shows expressions and tensors readably.
// Build first (dotnet build -c Release), then in a script or `dotnet fsi`: #load "src/FuncFlow/FuncFlow.fsx"
// An Expr then prints as its formula, shape and dtype (Print.interactive), a Tensor as NumPy lays out an
// array (Print.tensor).
#I "bin/Release/net10.0"
#r "FuncFlow.dll"

fsi.AddPrinter<FuncFlow.Expr> FuncFlow.Print.interactive
fsi.AddPrinter<FuncFlow.Tensor> FuncFlow.Print.tensor
