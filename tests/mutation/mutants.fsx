// The bugs the mutation pass plants (tests/mutation/mutate.fsx), one at a time: each is an exact string that occurs
// once in its file and the realistic bug that replaces it. The first ones are the survivors of the last audit.
module Mutants

type Mutant = { Id: string; File: string; What: string; Find: string; Replace: string }

let private core = "src/FuncFlow/"
let private facade = "src/FuncFlow.CSharp/"

let mutants: Mutant list =
    [
        // The audit's survivors.
        {
            Id = "M01"
            File = core + "Tensors/Kernels.fs"
            What = "max over an inner axis computes the minimum"
            Find = "TensorPrimitives.Max(Span<'T>.op_Implicit d, s, d)"
            Replace = "TensorPrimitives.Min(Span<'T>.op_Implicit d, s, d)"
        }
        {
            Id = "M02"
            File = core + "Tensors/Kernels.fs"
            What = "softplus as log(1 + exp x), overflowing for large x"
            Find = "'T.Max(x, 'T.Zero) + 'T.LogP1('T.Exp(-('T.Abs x)))"
            Replace = "'T.LogP1('T.Exp x)"
        }
        {
            Id = "M03"
            File = core + "NN/Optimizer.fs"
            What = "SGD momentum ignores weight decay (accumulates the raw gradient)"
            Find = "let vNew = momentum * v + g"
            Replace = "let vNew = momentum * v + grad"
        }
        {
            Id = "M04"
            File = core + "Data/Safetensors.fs"
            What = "safetensors read in header order (no seek to data_offsets)"
            Find = "fs.Position <- dataStart + e.Begin\n            fs.ReadExactly"
            Replace = "fs.ReadExactly"
        }
        {
            Id = "M05"
            File = core + "Data/Safetensors.fs"
            What = "safetensors I16 decoded as unsigned"
            Find = "float (BinaryPrimitives.ReadInt16LittleEndian(ReadOnlySpan(b, 2 * i, 2)))"
            Replace = "float (BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan(b, 2 * i, 2)))"
        }
        {
            Id = "M06"
            File = core + "NN/Evaluator.fs"
            What = "accuracy as the mean of per-batch accuracies instead of per row"
            Find =
                "correct <- correct + c\n        {\n            Loss = mean.Value\n            Accuracy = if loss.Correct.IsSome && mean.Count > 0 then Some(correct / float mean.Count) else None"
            Replace =
                "correct <- correct + c / float b.Count\n        {\n            Loss = mean.Value\n            Accuracy = if loss.Correct.IsSome && mean.Count > 0 then Some(correct / ceil (float mean.Count / float batchSize)) else None"
        }
        {
            Id = "M07"
            File = core + "Differentiation/GradCheck.fs"
            What = "GradCheck's threshold loosened 100x"
            Find = "else error / tolerance options e"
            Replace = "else error / (100.0 * tolerance options e)"
        }
        {
            Id = "M08"
            File = core + "Execution/PlanCompiler.fs"
            What = "plan updates read variables already updated (update values not staged)"
            Find = "Writes = writes |> Array.map (fun struct (value, target) -> struct (beforeRun value, target))"
            Replace = "Writes = writes"
        }
        // Tensors
        {
            Id = "M09"
            File = core + "Tensors/Tensor.fs"
            What = "row-major strides leave the outermost axis's stride at 0"
            Find = "for i in shape.Length - 1 .. -1 .. 0 do\n            s[i] <- acc"
            Replace = "for i in shape.Length - 1 .. -1 .. 1 do\n            s[i] <- acc"
        }
        {
            Id = "M10"
            File = core + "Tensors/Tensor.fs"
            What = "a negative axis resolves one axis too far left"
            Find = "let a = if axis < 0 then axis + rank else axis"
            Replace = "let a = if axis < 0 then axis + rank - 1 else axis"
        }
        {
            Id = "M11"
            File = core + "Tensors/Kernels.fs"
            What = "scalar - tensor computes tensor - scalar"
            Find = "| BinaryOp.Add -> TensorPrimitives.Add(b, a, dst)\n            | BinaryOp.Sub -> TensorPrimitives.Subtract(a, b, dst)"
            Replace =
                "| BinaryOp.Add -> TensorPrimitives.Add(b, a, dst)\n            | BinaryOp.Sub -> TensorPrimitives.Subtract(b, a, dst)"
        }
        {
            Id = "M12"
            File = core + "Tensors/Kernels.fs"
            What = "softmax without subtracting the row maximum (overflows)"
            Find = "let m = TensorPrimitives.Max x"
            Replace = "let m = 'T.Zero"
        }
        {
            Id = "M13"
            File = core + "Tensors/Kernels.fs"
            What = "an index equal to the count passes the range check"
            Find = "v >= 0.0 && v < float count"
            Replace = "v >= 0.0 && v <= float count"
        }
        {
            Id = "M14"
            File = core + "Tensors/Blas.fs"
            What = "managed GEMM ignores transA"
            Find = "let aip = if transA then a[aOff + p * lda + i] else a[aOff + i * lda + p]"
            Replace = "let aip = a[aOff + i * lda + p]"
        }
        {
            Id = "M15"
            File = core + "Tensors/Blas.fs"
            What = "GEMM accepts a leading dimension one short of the columns"
            Find = "&& (off < 0 || ld < cols ||"
            Replace = "&& (off < 0 || ld < cols - 1 ||"
        }
        // Expressions
        {
            Id = "M16"
            File = core + "Expressions/Expr.fs"
            What = "matmul infers the result's last axis from the wrong axis of b"
            Find = "(Array.append batch [| sa[a.Rank - 2]; sb[b.Rank - 1] |])"
            Replace = "(Array.append batch [| sa[a.Rank - 2]; sb[b.Rank - 2] |])"
        }
        {
            Id = "M17"
            File = core + "Expressions/Expr.fs"
            What = "slice's range check lets the range end one past the axis"
            Find = "if start < 0 || length < 0 || start + length > x.ShapeRef[a] then"
            Replace = "if start < 0 || length < 0 || start + length > x.ShapeRef[a] + 1 then"
        }
        {
            Id = "M18"
            File = core + "Expressions/Expr.fs"
            What = "expand refuses a new last axis (dim = rank)"
            Find = "if dim < 0 || dim > x.Rank then"
            Replace = "if dim < 0 || dim >= x.Rank then"
        }
        {
            Id = "M19"
            File = core + "Expressions/Graph.fs"
            What = "the topological sort walks a shared operand again at each use (a DAG walked as a tree)"
            Find = "if index.Visit child.Id then stack.Push(struct (child, 0))"
            Replace = "index.Visit child.Id |> ignore\n                    stack.Push(struct (child, 0))"
        }
        // Differentiation
        {
            Id = "M20"
            File = core + "Differentiation/Grad.fs"
            What = "the divisor's gradient of a / b loses its sign"
            Find = "toB (fun () -> -(g * y) / b)"
            Replace = "toB (fun () -> (g * y) / b)"
        }
        {
            Id = "M21"
            File = core + "Differentiation/Grad.fs"
            What = "max's gradient gives every tied maximum the full gradient"
            Find = "spread x axis keep g * mask / count)"
            Replace = "spread x axis keep g * mask)"
        }
        {
            Id = "M22"
            File = core + "Differentiation/Grad.fs"
            What = "a node's second gradient contribution replaces the first"
            Find = "several[p] <- ResizeArray [| single[p]; g |]"
            Replace = "several[p] <- ResizeArray [| g |]"
        }
        {
            Id = "M23"
            File = core + "Differentiation/GradCheck.fs"
            What = "GradCheck reports the best element instead of the worst"
            Find = "let worst = entries |> Seq.maxBy (excess options)"
            Replace = "let worst = entries |> Seq.minBy (excess options)"
        }
        // Execution
        {
            Id = "M24"
            File = core + "Execution/Execute.fs"
            What = "pad puts the values at the start, all the zeros after them"
            Find = "dst, node.ShapeRef[axis], before, interior + 1, outer, n, inner)"
            Replace = "dst, node.ShapeRef[axis], 0, interior + 1, outer, n, inner)"
        }
        {
            Id = "M25"
            File = core + "Execution/Eval.fs"
            What = "Eval's scalar path drops the second term of an addN"
            Find = "for i in 1 .. count - 1 do\n                    sum <- sum"
            Replace = "for i in 2 .. count - 1 do\n                    sum <- sum"
        }
        {
            Id = "M26"
            File = core + "Execution/Eval.fs"
            What = "Eval skips the dtype check of a bound value"
            Find = "if t.DType <> node.DType then"
            Replace = "if false then"
        }
        {
            Id = "M27"
            File = core + "Execution/Schedule.fs"
            What = "a root's own use is not counted (roots read once inside look single-use)"
            Find = "positions[i] <- p\n            uses[p] <- uses[p] + 1"
            Replace = "positions[i] <- p"
        }
        {
            Id = "M28"
            File = core + "Execution/FusedLoop.fs"
            What = "a fused loop's subtraction swaps its operands (b - a), as an SGD update p - lr g would"
            Find = "| Op.Binary BinaryOp.Sub -> E.Subtract(a, operand step.B)"
            Replace = "| Op.Binary BinaryOp.Sub -> E.Subtract(operand step.B, a)"
        }
        {
            Id = "M29"
            File = core + "Execution/PlanCompiler.fs"
            What = "fusion absorbs an intermediate that other nodes also read"
            Find = "if groupSize[i] > 0 && s.Uses[i] = 1 && size i = size k"
            Replace = "if groupSize[i] > 0 && s.Uses[i] >= 1 && size i = size k"
        }
        {
            Id = "M30"
            File = core + "Execution/PlanCompiler.fs"
            What = "a reshape's reads do not keep its operand's buffer alive"
            Find = "| Alias -> owner[k] <- owner[p.Reads[k][0]]"
            Replace = "| Alias -> ()"
        }
        {
            Id = "M31"
            File = core + "Execution/Plan.fs"
            What = "a fused group's last block runs a full block's length"
            Find = "let length = min PlanCompiler.FusedBlock (dst.Length - start)"
            Replace = "let length = min PlanCompiler.FusedBlock dst.Length"
        }
        {
            Id = "M32"
            File = core + "Execution/Print.fs"
            What = "formulas drop the parentheses of a right operand of equal precedence (a - (b - c))"
            Find = "if level = Power then level + 1, level else level, level + 1"
            Replace = "if level = Power then level + 1, level else level, level"
        }
        // Data
        {
            Id = "M33"
            File = core + "Data/Idx.fs"
            What = "IDX signed bytes decoded as unsigned"
            Find = "float32 (sbyte b[i])"
            Replace = "float32 b[i]"
        }
        {
            Id = "M34"
            File = core + "Data/Csv.fs"
            What = "CSV accepts rows shorter than the first"
            Find = "elif cells.Length <> width then"
            Replace = "elif cells.Length > width then"
        }
        {
            Id = "M35"
            File = core + "Data/Standardizer.fs"
            What = "the standardizer divides by n - 1 (sample std)"
            Find = "let s = sqrt (sq[j] / float n)"
            Replace = "let s = sqrt (sq[j] / float (n - 1))"
        }
        {
            Id = "M36"
            File = core + "Data/Batches.fs"
            What = "batches drop the last smaller batch even without dropLast"
            Find = "else (n + batchSize - 1) / batchSize"
            Replace = "else n / batchSize"
        }
        {
            Id = "M37"
            File = core + "Data/Datasets.fs"
            What = "the split rounds the test rows down instead of up"
            Find = "let nTest = int (ceil (testFraction * float n))"
            Replace = "let nTest = int (testFraction * float n)"
        }
        {
            Id = "M38"
            File = core + "Data/Dataset.fs"
            What = "shuffling draws j below i (Sattolo's cycles, not a uniform permutation)"
            Find = "let j = rng.Next(i + 1)"
            Replace = "let j = rng.Next(i)"
        }
        // NN
        {
            Id = "M39"
            File = core + "NN/Init.fs"
            What = "He initialisation scales by the fan-out"
            Find = "| He -> sqrt (2.0 / float fanIn)"
            Replace = "| He -> sqrt (2.0 / float fanOut)"
        }
        {
            Id = "M40"
            File = core + "NN/Linear.fs"
            What = "Linear never adds its bias"
            Find = "if useBias then y + scope.Param \"bias\" else y"
            Replace = "y"
        }
        {
            Id = "M41"
            File = core + "NN/Dropout.fs"
            What = "dropout keeps elements unscaled (no 1 / (1 - p))"
            Find = "if rng.NextDouble() < p then 0.0 else keep"
            Replace = "if rng.NextDouble() < p then 0.0 else 1.0"
        }
        {
            Id = "M42"
            File = core + "NN/Losses.fs"
            What = "cross-entropy summed over the batch instead of averaged"
            Find = "-(Expr.mean (Expr.sumAxis 1 (Expr.logSoftmax 1 logits * oneHot)))"
            Replace = "-(Expr.sum (Expr.sumAxis 1 (Expr.logSoftmax 1 logits * oneHot)))"
        }
        {
            Id = "M43"
            File = core + "NN/Optimizer.fs"
            What = "Adam adds epsilon inside the square root"
            Find = "(Expr.sqrt (vNew / c2) + epsilon)"
            Replace = "Expr.sqrt (vNew / c2 + epsilon)"
        }
        {
            Id = "M44"
            File = core + "NN/Metrics.fs"
            What = "argmax takes the last of tied maxima"
            Find = "if v[i * k + j] > v[i * k + best] then best <- j"
            Replace = "if v[i * k + j] >= v[i * k + best] then best <- j"
        }
        {
            Id = "M45"
            File = core + "NN/Trainer.fs"
            What = "a new batch shape's plan starts from the initial parameters (state not carried over)"
            Find = "| Some c when not (obj.ReferenceEquals(c, step)) -> step.CopyStateFrom c"
            Replace = "| Some c when not (obj.ReferenceEquals(c, step)) -> ()"
        }
        {
            Id = "M46"
            File = core + "NN/Model.fs"
            What = "WithParameters (and Load) check a parameter's size, not its shape"
            Find = "| Some v when Shape.equal v.ShapeRef t.ShapeRef -> ()"
            Replace = "| Some v when v.Size = t.Size -> ()"
        }
        // C# facade
        {
            Id = "M47"
            File = facade + "Nodes/Operations.cs"
            What = "the MiniFlow Linear node drops its bias"
            Find = "ExprModule.add(ExprModule.matmul(inputs[0], inputs[1]), inputs[2]);"
            Replace = "ExprModule.matmul(inputs[0], inputs[1]);"
        }
        {
            Id = "M48"
            File = facade + "Nodes/Node.cs"
            What = "a node read twice by one outbound node counts that node's gradient twice"
            Find = "foreach (var n in outbound.Distinct())"
            Replace = "foreach (var n in outbound)"
        }
        {
            Id = "M49"
            File = facade + "Autograd/Tensor.cs"
            What = "Backward overwrites an existing gradient instead of adding to it"
            Find = "total = ExprModule.add(Core.Var(name, t.grad.data.Shape), g);"
            Replace = "total = g;"
        }
        {
            Id = "M50"
            File = facade + "Autograd/Optim.cs"
            What = "the Grokking SGD steps up the gradient"
            Find = "Core.AddScaled(p.Data, -Alpha, p.Grad.Data)"
            Replace = "Core.AddScaled(p.Data, Alpha, p.Grad.Data)"
        }
        {
            Id = "M51"
            File = facade + "Autograd/GradCheck.cs"
            What = "the C# GradCheck passes atol and rtol swapped"
            Find = "new GradCheckOptions(1e-6, atol, rtol, fast, 0)"
            Replace = "new GradCheckOptions(1e-6, rtol, atol, fast, 0)"
        }
        {
            Id = "M52"
            File = facade + "Interop/Core.cs"
            What = "Core.Sum starts at the second value (drops the first gradient part)"
            Find = "for (int i = 0; i < values.Count; i++)\n            {\n                var name = \"v\""
            Replace = "for (int i = 1; i < values.Count; i++)\n            {\n                var name = \"v\""
        }
        {
            Id = "M53"
            File = core + "Expressions/Expr.fs"
            What = "one literal cache for all threads: the nodes a graph gets depend on what other threads build"
            Find = "[<ThreadStatic; DefaultValue>]"
            Replace = "[<DefaultValue>]"
        }
        {
            Id = "M54"
            File = core + "Tensors/Blas.fs"
            What = "the managed GEMM adds the product to C before scaling C by beta (beta (C + A B))"
            Find =
                "if not ('T.IsZero(beta - 'T.One)) then\n                TensorPrimitives.Multiply(Span<'T>.op_Implicit cRow, beta, cRow)\n            TensorPrimitives.Add(ReadOnlySpan<'T>(product, 0, n), Span<'T>.op_Implicit cRow, cRow)"
            Replace =
                "TensorPrimitives.Add(ReadOnlySpan<'T>(product, 0, n), Span<'T>.op_Implicit cRow, cRow)\n            if not ('T.IsZero(beta - 'T.One)) then\n                TensorPrimitives.Multiply(Span<'T>.op_Implicit cRow, beta, cRow)"
        }
    ]
