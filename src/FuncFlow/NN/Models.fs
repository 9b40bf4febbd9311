namespace FuncFlow.NN

/// Networks that the examples, the tests and the benchmark all build, defined once.
[<RequireQualifiedAccess>]
module Models =
    /// LeNet-5 for [N; 1; 28; 28] images: conv 1->6 (5x5, padding 2), ReLU, max-pool 2; conv 6->16 (5x5), ReLU,
    /// max-pool 2; flatten; linear 400->120->84->10 with ReLU between (WORKLOADS.md's lenet_mnist_b64_f32).
    let lenet5 () : Layer =
        Sequential(
            Conv2d(1, 6, 5, 1, 2),
            ReLU(),
            MaxPool2d 2,
            Conv2d(6, 16, 5),
            ReLU(),
            MaxPool2d 2,
            Flatten(),
            Linear(400, 120),
            ReLU(),
            Linear(120, 84),
            ReLU(),
            Linear(84, 10)
        )
